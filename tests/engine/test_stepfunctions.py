"""Step Functions aws-sdk:rekognition tasks, run by moto's interpreter, reach the engine."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from autopilot.engine.testing import running_engine

DEFINITION = {
    "Comment": "Create a project (tolerating an existing one), then read its status back.",
    "StartAt": "CreateProject",
    "States": {
        "CreateProject": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:rekognition:createProject",
            "Parameters": {"ProjectName.$": "$.project"},
            "ResultPath": "$.created",
            # AWS names the error "Rekognition.ResourceInUseException"; moto's interpreter lower-cases the
            # service part. Listing both keeps the definition right in both places.
            "Catch": [
                {
                    "ErrorEquals": [
                        "Rekognition.ResourceInUseException",
                        "rekognition.ResourceInUseException",
                    ],
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
