"""The controller's AWS calls, checked with botocore Stubber and expected parameters."""

from __future__ import annotations

import json

import boto3
from botocore.stub import Stubber

from lambdas.serving.gateways import QueueBacklog, RekognitionModels, ServingTarget, TransitionStarter

PROJECT_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/digits/1700000000000"
VERSION_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/digits/version/v2/1700000000001"
TARGET = ServingTarget("digits", PROJECT_ARN, VERSION_ARN, "v2")


def test_status_of_the_production_version_and_project_arn_cache() -> None:
    client = boto3.client("rekognition", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response(
            "describe_projects",
            {
                "ProjectDescriptions": [
                    {"ProjectArn": "arn:aws:rekognition:us-east-1:123456789012:project/digits2/1"},
                    {"ProjectArn": PROJECT_ARN},
                ]
            },
            {"ProjectNames": ["digits"]},
        )
        stub.add_response(
            "describe_project_versions",
            {
                "ProjectVersionDescriptions": [
                    {"ProjectVersionArn": VERSION_ARN.replace("v2", "v1"), "Status": "RUNNING"},
                    {"ProjectVersionArn": VERSION_ARN, "Status": "STOPPED"},
                ]
            },
            {"ProjectArn": PROJECT_ARN, "VersionNames": ["v2"]},
        )
        models = RekognitionModels(client)
        assert models.project_arn("digits") == PROJECT_ARN
        assert models.project_arn("digits") == PROJECT_ARN  # cached: one DescribeProjects call
        assert models.status(TARGET) == "STOPPED"
        stub.assert_no_pending_responses()


def test_missing_version_has_no_status() -> None:
    client = boto3.client("rekognition", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("describe_project_versions", {"ProjectVersionDescriptions": []})
        assert RekognitionModels(client).status(TARGET) is None


def test_backlog_sums_visible_in_flight_and_delayed() -> None:
    client = boto3.client("sqs", region_name="us-east-1")
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/detection"
    with Stubber(client) as stub:
        stub.add_response(
            "get_queue_attributes",
            {
                "Attributes": {
                    "ApproximateNumberOfMessages": "3",
                    "ApproximateNumberOfMessagesNotVisible": "2",
                    "ApproximateNumberOfMessagesDelayed": "5",
                }
            },
            {"QueueUrl": url, "AttributeNames": list(QueueBacklog.ATTRIBUTES)},
        )
        assert QueueBacklog(url, client).backlog() == 10
    assert QueueBacklog(None).backlog() == 0


def test_transition_starter_sends_the_input_as_json() -> None:
    client = boto3.client("stepfunctions", region_name="us-east-1")
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:model-control"
    with Stubber(client) as stub:
        stub.add_response(
            "start_execution",
            {"executionArn": f"{arn}:x", "startDate": "2026-11-23T10:00:00Z"},
            {"stateMachineArn": arn, "name": "x", "input": json.dumps({"action": "START"})},
        )
        assert TransitionStarter(arn, client).start("x", {"action": "START"}) == f"{arn}:x"
