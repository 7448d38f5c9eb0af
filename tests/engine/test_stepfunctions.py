"""Step Functions aws-sdk:rekognition tasks, run by moto's interpreter, reach the engine."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from autopilot.engine.testing import running_engine
from autopilot.local.sdk_error_names import use_aws_error_names
from tests.engine.conftest import BUCKET, make_project_with_datasets

DEFINITION = {
    "Comment": "Create a project (tolerating an existing one), then read its status back.",
    "StartAt": "CreateProject",
    "States": {
        "CreateProject": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:rekognition:createProject",
            "Parameters": {"ProjectName.$": "$.project"},
            "ResultPath": "$.created",
            # The name AWS raises; moto's interpreter uses it too once use_aws_error_names() ran.
            "Catch": [
                {
                    "ErrorEquals": ["Rekognition.ResourceInUseException"],
                    "ResultPath": "$.error",
                    "Next": "Describe",
                }
            ],
            "Next": "Describe",
        },
        "Describe": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:rekognition:describeProjects",
            "Parameters": {"ProjectNames.$": "States.Array($.project)"},
            # Only string members are kept: moto cannot serialise the timestamps of an execution's output.
            "ResultSelector": {
                "Statuses.$": "$.ProjectDescriptions[*].Status",
                "Arns.$": "$.ProjectDescriptions[*].ProjectArn",
            },
            "ResultPath": "$.described",
            "Next": "First",
        },
        "First": {
            "Type": "Pass",
            "Parameters": {
                "Status.$": "States.ArrayGetItem($.described.Statuses, 0)",
                "ProjectArn.$": "States.ArrayGetItem($.described.Arns, 0)",
            },
            "ResultPath": "$.project_description",
            "Next": "IsCreated",
        },
        "IsCreated": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.project_description.Status", "StringEquals": "CREATED", "Next": "Done"}
            ],
            "Default": "Unexpected",
        },
        "Done": {"Type": "Succeed"},
        "Unexpected": {"Type": "Fail", "Error": "UnexpectedStatus"},
    },
}


@pytest.mark.slow
def test_state_machine_drives_the_engine() -> None:
    use_aws_error_names()
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),  # type: ignore[arg-type]
        running_engine(time_scale=0.001) as engine,
    ):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name="engine-check",
            definition=json.dumps(DEFINITION),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]

        def run(name: str) -> dict[str, Any]:
            execution = sfn.start_execution(
                stateMachineArn=machine, name=name, input=json.dumps({"project": "from-sfn"})
            )
            deadline = time.monotonic() + 30
            while True:
                described = sfn.describe_execution(executionArn=execution["executionArn"])
                if described["status"] != "RUNNING":
                    return described
                assert time.monotonic() < deadline
                time.sleep(0.1)

        first = run("first")
        assert first["status"] == "SUCCEEDED", first
        output = json.loads(first["output"])
        assert output["created"]["ProjectArn"] == output["project_description"]["ProjectArn"]
        # The project really lives in the engine
        projects = engine.client().describe_projects(ProjectNames=["from-sfn"])["ProjectDescriptions"]
        assert projects[0]["ProjectArn"] == output["created"]["ProjectArn"]
        # A second run hits ResourceInUseException, which the state machine catches
        second = run("second")
        assert second["status"] == "SUCCEEDED", second
        assert json.loads(second["output"])["error"]["Error"].lower() == "rekognition.resourceinuseexception"
        assert json.loads(second["output"])["error"]["Error"] == "Rekognition.ResourceInUseException"


TRAIN_AND_POLL = {
    "Comment": "Train a version and poll it until training ends (bounded), the job-poller pattern.",
    "StartAt": "Train",
    "States": {
        "Train": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:rekognition:createProjectVersion",
            "Parameters": {
                "ProjectArn.$": "$.project_arn",
                "VersionName.$": "$.version",
                "OutputConfig": {"S3Bucket.$": "$.bucket", "S3KeyPrefix": "training-output"},
            },
            "ResultPath": "$.created",
            "Next": "Wait",
        },
        "Wait": {"Type": "Wait", "SecondsPath": "$.wait_seconds", "Next": "Describe"},
        "Describe": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:rekognition:describeProjectVersions",
            "Parameters": {"ProjectArn.$": "$.project_arn", "VersionNames.$": "States.Array($.version)"},
            "ResultSelector": {
                "Statuses.$": "$.ProjectVersionDescriptions[*].Status",
                "Scores.$": "$.ProjectVersionDescriptions[*].EvaluationResult.F1Score",
            },
            "ResultPath": "$.described",
            "Next": "Count",
        },
        "Count": {
            "Type": "Pass",
            "Parameters": {
                "Status.$": "States.ArrayGetItem($.described.Statuses, 0)",
                "Polls.$": "States.MathAdd($.polls, 1)",
            },
            "ResultPath": "$.poll",
            "Next": "Remember",
        },
        "Remember": {
            "Type": "Pass",
            "InputPath": "$.poll.Polls",
            "ResultPath": "$.polls",
            "Next": "Done?",
        },
        "Done?": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.poll.Status", "StringEquals": "TRAINING_COMPLETED", "Next": "Trained"},
                {"Variable": "$.poll.Status", "StringEquals": "TRAINING_FAILED", "Next": "Failed"},
                {"Variable": "$.polls", "NumericGreaterThanEquals": 60, "Next": "TimedOut"},
            ],
            "Default": "Wait",
        },
        "Trained": {"Type": "Succeed"},
        "Failed": {"Type": "Fail", "Error": "TrainingFailed"},
        "TimedOut": {"Type": "Fail", "Error": "TrainingTimedOut"},
    },
}


@pytest.mark.slow
def test_state_machine_trains_and_polls() -> None:
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),  # type: ignore[arg-type]
        running_engine(time_scale=0.001) as engine,
    ):
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        made = make_project_with_datasets(engine.client(), s3, "sfn-train", per_label=4)
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name="train-and-poll",
            definition=json.dumps(TRAIN_AND_POLL),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        execution = sfn.start_execution(
            stateMachineArn=machine,
            input=json.dumps(
                {
                    "project_arn": made["project"],
                    "version": "v1",
                    "bucket": BUCKET,
                    "wait_seconds": 1,
                    "polls": 0,
                }
            ),
        )
        deadline = time.monotonic() + 90
        while (described := sfn.describe_execution(executionArn=execution["executionArn"]))[
            "status"
        ] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert described["status"] == "SUCCEEDED", described
        output = json.loads(described["output"])
        assert output["poll"]["Status"] == "TRAINING_COMPLETED"
        scores = output["described"]["Scores"]  # a list on AWS; moto unwraps a single match
        assert (scores[0] if isinstance(scores, list) else scores) >= 0.9
        version = engine.client().describe_project_versions(ProjectArn=made["project"])[
            "ProjectVersionDescriptions"
        ]
        assert version[0]["Status"] == "TRAINING_COMPLETED"
