"""The policies of a template with the physical names the local runtime assigns (no moto needed)."""

from __future__ import annotations

import copy
from typing import Any

from autopilot.local.iam import Enforcer, extract_policies
from autopilot.local.lambda_service import LocalLambdaService
from autopilot.local.runtime import LocalRuntime
from autopilot.local.runtime.providers import assign_ids
from autopilot.local.template import Resolver

ACCOUNT = "123456789012"
REGION = "us-east-1"


def runtime_resolver(template: dict[str, Any]) -> Resolver:
    runtime = LocalRuntime(
        template, LocalLambdaService(account=ACCOUNT, region=REGION), account=ACCOUNT, region=REGION
    )
    assign_ids(runtime.ctx)
    return runtime.resolver


def enforcer_for(template: dict[str, Any]) -> tuple[Enforcer, Resolver]:
    resolver = runtime_resolver(template)
    return Enforcer(extract_policies(template, resolver.resolve, ACCOUNT, REGION)), resolver


def logical_id(template: dict[str, Any], kind: str, path_part: str) -> str:
    """The logical id of the one resource of `kind` whose construct path contains `path_part`."""
    found = [
        lid
        for lid, res in template["Resources"].items()
        if res["Type"] == kind and path_part in str((res.get("Metadata") or {}).get("aws:cdk:path", ""))
    ]
    assert len(found) == 1, f"{kind} at {path_part}: {found}"
    return found[0]


def without_statement(template: dict[str, Any], policy_id: str, member: str, match: Any) -> dict[str, Any]:
    """A copy of `template` whose policy document (Properties[member]) lost the statement `match` selects."""
    edited = copy.deepcopy(template)
    document = edited["Resources"][policy_id]["Properties"][member]
    before = len(document["Statement"])
    document["Statement"] = [s for s in document["Statement"] if not match(s)]
    assert len(document["Statement"]) == before - 1, f"expected one statement removed from {policy_id}"
    return edited
