"""IAM enforced in the running stack: a grant removed from a synthesized template makes the run fail
with the access denial named (a handler's call, a state machine's task, an S3 -> SQS delivery and
the KMS key an encrypted queue needs)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from autopilot.local.runtime import running_stack
from autopilot.local.stepfunctions import wait_for_execution
from tests.local.iam_support import ACCOUNT, REGION, logical_id, without_statement
from tests.local.wiring_stack import build_wiring_template


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)


def _policy_of(template: dict[str, Any], path_part: str) -> str:
    return logical_id(template, "AWS::IAM::Policy", path_part)


def test_a_handler_without_its_publish_grant_is_refused_by_sns(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Given the small wiring stack whose consumer lost its sns:Publish statement
    template = build_wiring_template(str(tmp_path_factory.mktemp("wiring")))
    policy = next(lid for lid in template["Resources"] if lid.startswith("ConsumerServiceRoleDefaultPolicy"))
    template = without_statement(
        template,
        policy,
        "PolicyDocument",
        lambda statement: "sns:Publish" in _actions(statement),
    )
    with running_stack(template, clock_speed=600, start_pump=False) as runtime:
        # When an upload reaches the consumer, which publishes it
        boto3.client("s3").put_object(
            Bucket=runtime.output("DataBucketName"), Key="digits/train/seven/a.png", Body=b"x"
        )
        consumer = next(name for lid, name in runtime.functions.items() if lid.startswith("Consumer"))

        def failed() -> list[Any]:
            return [i for i in runtime.lambdas.invocations if i.function_name == consumer and i.error]

        assert runtime.run_until(lambda: bool(failed()), timeout_s=30)
        figures = runtime.iam_summary()
    # Then the publish failed as SNS refuses it, naming the role's session, the action and the topic
    message = str(failed()[0].error["errorMessage"])  # type: ignore[index]
    assert "(AuthorizationError)" in message
    assert f"arn:aws:sts::{ACCOUNT}:assumed-role/" in message and f"/{consumer} " in message
    assert "is not authorized to perform: sns:Publish on resource: arn:aws:sns:" in message
    assert "no identity-based policy allows the sns:Publish action" in message
    assert not runtime.published, "nothing may reach the topic"
    assert figures["denied"] == 1 and figures["checked"] > 1


def test_a_state_machine_without_its_rekognition_grant_fails_the_task(template: dict[str, Any]) -> None:
    # Given the shipped stack whose model control role lost its Start/StopProjectVersion statement
    edited = without_statement(
        template,
        _policy_of(template, "/Serving/ModelControl/Role/DefaultPolicy/"),
        "PolicyDocument",
        lambda statement: "rekognition:StopProjectVersion" in _actions(statement),
    )
    machine = logical_id(edited, "AWS::StepFunctions::StateMachine", "/Serving/ModelControl/")
    version = f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/digits/version/digits.v1/1700000000000"
    with running_stack(edited, clock_speed=600, start_pump=False) as runtime:
        sfn = boto3.client("stepfunctions")
        # When it is asked to stop a model
        started = sfn.start_execution(
            stateMachineArn=runtime.physical(machine),
            input=json.dumps({"action": "STOP", "project": "digits", "version_arn": version}),
        )
        result = wait_for_execution(sfn, started["executionArn"], timeout_s=60)
        figures = runtime.iam_summary()
    # Then StopModel failed with the error a workflow sees on AWS, the cause naming the action
    failures = [
        event["taskFailedEventDetails"] for event in result.history if event.get("type") == "TaskFailed"
    ]
    assert failures, result.history
    assert failures[0]["error"] == "Rekognition.AccessDeniedException"
    assert (
        "is not authorized to perform: rekognition:StopProjectVersion on resource: " + version
        in (failures[0]["cause"])
    )
    assert "assumed-role/" in failures[0]["cause"]
    assert figures["denied"] == 1


@pytest.mark.parametrize(
    ("kind", "path_part", "member", "removed", "named"),
    [
        (
            "AWS::SQS::QueuePolicy",
            "/Ingestion/Queue/Policy/",
            "PolicyDocument",
            lambda s: s.get("Principal") == {"Service": "s3.amazonaws.com"},
            "sqs:SendMessage",
        ),
        (
            "AWS::KMS::Key",
            "/Storage/Key/",
            "KeyPolicy",
            lambda s: s.get("Principal") == {"Service": "s3.amazonaws.com"},
            "kms:GenerateDataKey",
        ),
    ],
    ids=["queue-policy", "key-policy"],
)
def test_an_s3_notification_the_policies_refuse_is_not_delivered(
    template: dict[str, Any], kind: str, path_part: str, member: str, removed: Any, named: str
) -> None:
    # Given the shipped stack without the statement that lets S3 send to the (encrypted) ingestion queue
    edited = without_statement(template, logical_id(template, kind, path_part), member, removed)
    queue = logical_id(edited, "AWS::SQS::Queue", "/Ingestion/Queue/")
    with running_stack(edited, clock_speed=600, start_pump=False) as runtime:
        # When a training image is uploaded
        bucket = runtime.physical(logical_id(edited, "AWS::S3::Bucket", "/Storage/Data/"))
        boto3.client("s3").put_object(Bucket=bucket, Key="digits/train/seven/a.png", Body=b"x")
        waiting = [m["Body"] for m in runtime.poller.receive(runtime.physical(queue), 10)]
        refusals = [entry.text for entry in runtime.timeline if entry.source == "iam"]
        figures = runtime.iam_summary()
    # Then the notification is not in the queue, and the runtime says which permission was missing
    assert not [body for body in waiting if "digits/train/seven/a.png" in body], waiting
    assert len(refusals) == 1, refusals
    assert refusals[0].startswith("s3.amazonaws.com -> ") and "not delivered" in refusals[0]
    assert f"s3.amazonaws.com is not authorized to perform: {named}" in refusals[0]
    assert any("IAM: s3.amazonaws.com" in error for error in runtime.errors)
    assert figures["denied"] == 1
