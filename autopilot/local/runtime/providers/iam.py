"""IAM roles: names and ARNs (their policies are enforced by runtime/enforcement.py; see docs/local.md)."""

from __future__ import annotations

from autopilot.local.runtime.context import StackContext
from autopilot.local.template import physical_name

ROLE_TYPE = "AWS::IAM::Role"


def assign_ids(ctx: StackContext) -> None:
    r = ctx.resolver
    for lid in r.resources_of_type(ROLE_TYPE):
        name = physical_name(lid, 64)
        r.physical_ids[lid] = name
        r.attributes[(lid, "Arn")] = f"arn:aws:iam::{ctx.account}:role/{name}"
        r.attributes[(lid, "RoleId")] = f"AROA{name[-8:]}"
