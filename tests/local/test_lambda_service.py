"""The local Lambda Invoke service: boto3 and moto's Step Functions run real handlers through it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from autopilot.local.lambda_service import LocalLambdaService
from autopilot.local.stepfunctions import run_execution
from tests.local import sample_handlers


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalLambdaService]:
    svc = LocalLambdaService()
    svc.register("Doubler", handler="tests.local.sample_handlers.double", environment={"SAMPLE_MARKER": "m1"})
    svc.register("Failer", handler="tests.local.sample_handlers.fail")
    svc.register("Recorder", handler="tests.local.sample_handlers.record")
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", svc.start())
    yield svc
    svc.stop()
    svc.release_environment()


def test_request_response_runs_the_handler_with_its_environment(service: LocalLambdaService) -> None:
    # Given a registered function with an environment variable the process does not have
    assert os.environ.get("SAMPLE_MARKER", "") == ""
    client = boto3.client("lambda", region_name="us-east-1")
    # When it is invoked by ARN through boto3
    response = client.invoke(
        FunctionName="arn:aws:lambda:us-east-1:123456789012:function:Doubler", Payload=b'{"value": 4}'
    )
    # Then the handler ran with its environment and a context, and the environment is restored
    payload = json.loads(response["Payload"].read())
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert payload["value"] == 8 and payload["marker"] == "m1" and payload["function"] == "Doubler"
    assert 0 < payload["remaining_ms"] <= 60_000
    assert os.environ.get("SAMPLE_MARKER", "") == ""


def test_handler_error_comes_back_as_an_unhandled_function_error(service: LocalLambdaService) -> None:
    # Given a handler that raises
    client = boto3.client("lambda", region_name="us-east-1")
    # When invoked
    response = client.invoke(FunctionName="Failer", Payload=b'{"value": 1}')
    # Then the response has the Lambda error shape
    body = json.loads(response["Payload"].read())
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "cannot handle 1"
    assert isinstance(body["stackTrace"], list) and body["stackTrace"]


def test_event_invocation_is_asynchronous_and_unknown_functions_are_not_found(
    service: LocalLambdaService,
) -> None:
    # Given the recorder function
    client = boto3.client("lambda", region_name="us-east-1")
    sample_handlers.RECEIVED.clear()
    # When invoked with InvocationType Event
    response = client.invoke(FunctionName="Recorder", InvocationType="Event", Payload=b'{"n": 1}')
    service.wait_async()
    # Then 202 and the handler ran in the background
    assert response["StatusCode"] == 202
    assert sample_handlers.RECEIVED == [{"n": 1}]
    # And an unknown function is a ResourceNotFoundException
    with pytest.raises(ClientError) as raised:
        client.invoke(FunctionName="Nope", Payload=b"{}")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_moto_step_functions_lambda_tasks_run_registered_handlers(service: LocalLambdaService) -> None:
    # Given moto's ASL interpreter and a definition with two lambda:invoke tasks
    definition = {
        "StartAt": "Double",
        "States": {
            "Double": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "Doubler", "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "Next": "Fail",
            },
            "Fail": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "Failer", "Payload.$": "$"},
                "End": True,
            },
        },
    }
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="sample", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sample"
        )["stateMachineArn"]
        # When executed
        result = run_execution(sfn, arn, {"value": 21}, timeout_s=60)
    # Then the first task's real output reached the second, whose error failed the execution
    assert result.status == "FAILED" and result.error == "ValueError"
    assert "cannot handle 42" in (result.cause or "")
    assert result.states_entered() == ["Double", "Fail"]
    assert [inv.function_name for inv in service.invocations] == ["Doubler", "Failer"]
