"""cfn-lint, with the serverless rules of cfn-lint-serverless, on the synthesized template.

cfn-lint's own errors: none allowed. Every other finding must match one entry of ACCEPTED, which
names the rule, says which resources it may concern and why it is not fixed; a finding outside
those resources (a new queue without a dead-letter queue, a function without a log retention...)
fails the test. The reasons are repeated in docs/architecture.md ("Template lint").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cfnlint.api import lint_file

from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.xdist_group("synth")

# Custom Labels regions the stack is deployed to in practice; cfn-lint checks resource types and
# properties against each region's schemas.
REGIONS = ["us-east-1", "eu-west-1"]
SERVERLESS_RULES = "cfn_lint_serverless.rules"


@dataclass(frozen=True)
class Accepted:
    rule: str
    reason: str
    applies: Callable[[dict[str, Any], str], bool]  # (template, logical id) -> may this finding stand?


def _resource(template: dict[str, Any], lid: str) -> dict[str, Any]:
    return dict(template["Resources"].get(lid, {}))


def _ref_or_getatt(value: Any) -> str | None:
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    return None


def _is_cdk_function(template: dict[str, Any], lid: str) -> bool:
    """CDK's own singleton (bucket notifications): not our code, its properties are CDK's."""
    resource = _resource(template, lid)
    handler = str(resource.get("Properties", {}).get("Handler", ""))
    return resource.get("Type") == "AWS::Lambda::Function" and not handler.startswith("lambdas.")


def _logs_to_retained_group(template: dict[str, Any], lid: str) -> bool:
    """The function logs to its own log group (LoggingConfig), and that group has a retention."""
    if _is_cdk_function(template, lid):
        return True
    config = _resource(template, lid).get("Properties", {}).get("LoggingConfig", {})
    group = _ref_or_getatt(config.get("LogGroup"))
    return group is not None and "RetentionInDays" in _resource(template, group).get("Properties", {})


def _is_dead_letter_queue(template: dict[str, Any], lid: str) -> bool:
    """Some queue redrives to it, or some rule target / asynchronous invocation fails over to it."""
    text_of = {
        other: str(resource.get("Properties", {}))
        for other, resource in template["Resources"].items()
        if resource["Type"] in ("AWS::SQS::Queue", "AWS::Events::Rule", "AWS::Lambda::EventInvokeConfig")
    }
    needle = str({"Fn::GetAtt": [lid, "Arn"]})
    return any(
        needle in text
        and (("RedrivePolicy" in text) or ("DeadLetterConfig" in text) or ("OnFailure" in text))
        for other, text in text_of.items()
        if other != lid
    )


def _function_has_on_failure_destination(template: dict[str, Any], lid: str) -> bool:
    """The permission's function has an EventInvokeConfig with an OnFailure destination."""
    function = _ref_or_getatt(_resource(template, lid).get("Properties", {}).get("FunctionName"))
    return any(
        r["Type"] == "AWS::Lambda::EventInvokeConfig"
        and _ref_or_getatt(r["Properties"].get("FunctionName")) == function
        and "OnFailure" in r["Properties"].get("DestinationConfig", {})
        for r in template["Resources"].values()
    )


def _sqs_source_with_redrive(template: dict[str, Any], lid: str) -> bool:
    """An SQS event source mapping whose queue has a dead-letter queue (RedrivePolicy)."""
    queue = _ref_or_getatt(_resource(template, lid).get("Properties", {}).get("EventSourceArn"))
    properties = _resource(template, queue or "").get("Properties", {})
    return _resource(template, queue or "").get("Type") == "AWS::SQS::Queue" and "RedrivePolicy" in properties


ACCEPTED = [
    Accepted(
        "W3005",
        "CDK writes DependsOn for the dependencies it tracks (roles before functions, queues before the "
        "bucket-notifications resource) even where a Ref/GetAtt already orders them; harmless and not ours "
        "to remove.",
        lambda template, lid: True,
    ),
    Accepted(
        "WS1004",
        "The rule looks for a log group named /aws/lambda/<function>; every function here logs to its own "
        "log group through LoggingConfig, and that group has a retention (checked). CDK's bucket-"
        "notifications handler runs only at deploy time.",
        _logs_to_retained_group,
    ),
    Accepted(
        "ES6000",
        "The queue is itself a dead-letter queue (of a queue, a rule target or asynchronous invocations); "
        "it has an alarm instead of a further dead-letter queue.",
        _is_dead_letter_queue,
    ),
    Accepted(
        "ES1007",
        "The function has an EventInvokeConfig with an OnFailure destination (checked); the rule only "
        "recognises one whose FunctionName is written the same way as the permission's.",
        _function_has_on_failure_destination,
    ),
    Accepted(
        "ES1001",
        "Lambda's OnFailure destination applies to stream sources, not to SQS; an SQS source's failures go "
        "to the queue's own dead-letter queue (RedrivePolicy, checked).",
        _sqs_source_with_redrive,
    ),
    Accepted(
        "ES1005",
        "CDK's bucket-notifications handler (deploy-time only); CDK sets its properties.",
        _is_cdk_function,
    ),
    Accepted(
        "WS1000",
        "CDK's bucket-notifications handler (deploy-time only) has no tracing; every function of ours does.",
        _is_cdk_function,
    ),
]


@pytest.fixture(scope="module")
def findings(whole_stack: Synthesized) -> list[Any]:
    return list(
        lint_file(
            whole_stack.template_path,
            config={"append_rules": [SERVERLESS_RULES], "regions": REGIONS},  # type: ignore[typeddict-unknown-key]
        )
    )


def _logical_id(match: Any) -> str:
    path = list(match.path or [])
    return str(path[1]) if len(path) > 1 and path[0] == "Resources" else ""


def test_the_serverless_rules_are_loaded(findings: list[Any]) -> None:
    # A serverless rule that fires on CDK's own handler proves the plugin ran (not a silent no-op).
    assert any(match.rule.id.startswith(("ES", "WS")) for match in findings)


def test_cfn_lint_finds_no_error(findings: list[Any]) -> None:
    errors = [
        f"{m.rule.id} {m.message} ({m.path_string})"
        for m in findings
        if m.rule.id.startswith("E") and not m.rule.id.startswith("ES")
    ]
    assert errors == []


def test_every_other_finding_is_accepted_with_its_reason(
    whole_stack: Synthesized, findings: list[Any]
) -> None:
    accepted = {entry.rule: entry for entry in ACCEPTED}
    unexplained = [
        f"{m.rule.id} {m.message} ({m.path_string})"
        for m in findings
        if m.rule.id not in accepted or not accepted[m.rule.id].applies(whole_stack.template, _logical_id(m))
    ]
    assert unexplained == []


def test_every_acceptance_is_still_needed(findings: list[Any]) -> None:
    """An entry nothing matches any more is removed, so the list stays the truth."""
    seen = {m.rule.id for m in findings}
    assert [entry.rule for entry in ACCEPTED if entry.rule not in seen] == []
