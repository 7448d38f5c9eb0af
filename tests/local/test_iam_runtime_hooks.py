"""The runtime's side of the IAM checks: handler calls run as the function's role, deliveries checked."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from autopilot.local.iam import AccessDenied
from autopilot.local.iam.runtime_hooks import RuntimeEnforcement
from tests.local.iam_support import ACCOUNT, REGION, logical_id, runtime_resolver


def enforcement(template: dict[str, Any]) -> tuple[RuntimeEnforcement, Any]:
    resolver = runtime_resolver(template)
    return RuntimeEnforcement(template, resolver, ACCOUNT, REGION), resolver


def test_a_handler_session_runs_as_the_function_role(template: dict[str, Any]) -> None:
    iam, resolver = enforcement(template)
    detection = str(
        resolver.resolve({"Ref": logical_id(template, "AWS::Lambda::Function", "Detection/Handler/")})
    )
    lifecycle = str(
        resolver.resolve({"Ref": logical_id(template, "AWS::SNS::Topic", "Notifications/Lifecycle/")})
    )
    iam.activate()
    try:
        session = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name=REGION)
        sns = session.client("sns")
        with Stubber(sns) as stubber:
            stubber.add_response("publish", {"MessageId": "1"})
            sns.publish(TopicArn=lifecycle, Message="the runtime's own call")  # no principal: not checked
            # The detection handler publishes detections, not lifecycle events
            with iam.invocation(detection), pytest.raises(ClientError) as raised:
                sns.publish(TopicArn=lifecycle, Message="x")
    finally:
        iam.deactivate()
    assert raised.value.response["Error"]["Code"] == "AuthorizationError"
    assert f"assumed-role/{iam.function_principal(detection).arn.split('/')[-2]}/{detection}" in str(
        raised.value
    )  # type: ignore[union-attr]
    assert iam.summary().endswith("1 denied")


def test_deliveries_and_scheduler_roles(template: dict[str, Any]) -> None:
    iam, resolver = enforcement(template)
    queue = str(
        resolver.resolve({"Fn::GetAtt": [logical_id(template, "AWS::SQS::Queue", "Detection/Queue/"), "Arn"]})
    )
    bucket = str(
        resolver.resolve({"Fn::GetAtt": [logical_id(template, "AWS::S3::Bucket", "Storage/Data/"), "Arn"]})
    )
    iam.deliver("s3.amazonaws.com", "sqs:SendMessage", queue, source_arn=bucket)
    with pytest.raises(AccessDenied, match="sqs:SendMessage"):
        iam.deliver("sns.amazonaws.com", "sqs:SendMessage", queue, source_arn=bucket)
    guard = str(
        resolver.resolve(
            {"Fn::GetAtt": [logical_id(template, "AWS::Lambda::Function", "Guard/Sweep/"), "Arn"]}
        )
    )
    iam.deliver_as_role(
        logical_id(template, "AWS::IAM::Role", "Guard/SchedulerRole/"), "lambda:InvokeFunction", guard
    )
    with pytest.raises(ClientError, match="lambda:InvokeFunction"):
        iam.deliver_as_role(
            logical_id(template, "AWS::IAM::Role", "Serving/SchedulerRole/"), "lambda:InvokeFunction", guard
        )
