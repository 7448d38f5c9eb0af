"""Rekognition error names of aws-sdk tasks: the shared module, and moto's interpreter once patched."""

from __future__ import annotations

import boto3
import pytest
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)

from autopilot.local.sdk_error_names import use_aws_error_names
from infra.step_functions_errors import busy_errors, rekognition_error, transient_errors


def test_names_follow_the_step_functions_rule_for_aws_sdk_integrations() -> None:
    # The guide's rule: ServiceName.ErrorName, "Exception" appended when the name lacks it
    assert rekognition_error("InternalServerError") == "Rekognition.InternalServerErrorException"
    assert rekognition_error("ThrottlingException") == "Rekognition.ThrottlingException"
    assert transient_errors() == [
        "Rekognition.ThrottlingException",
        "Rekognition.ProvisionedThroughputExceededException",
        "Rekognition.InternalServerErrorException",
        "Rekognition.LimitExceededException",
    ]
    assert busy_errors() == ["Rekognition.ResourceInUseException", "Rekognition.ResourceNotReadyException"]


def test_a_shape_the_service_model_lacks_is_refused_by_name() -> None:
    with pytest.raises(
        ValueError, match="'ServerBusyException' is not an error of the Rekognition service model"
    ):
        rekognition_error("ServerBusyException")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ThrottlingException", "Rekognition.ThrottlingException"),
        ("InternalServerError", "Rekognition.InternalServerErrorException"),
        ("ResourceNotFoundException", "Rekognition.ResourceNotFoundException"),
    ],
)
def test_moto_names_rekognition_task_errors_as_aws_does_once_patched(code: str, expected: str) -> None:
    use_aws_error_names()
    use_aws_error_names()  # idempotent
    client = boto3.client("rekognition", region_name="us-east-1")
    error = client.exceptions.from_code(code)({"Error": {"Code": code, "Message": "m"}}, "DescribeProjects")
    service = StateTaskServiceAwsSdk._normalise_service_error_name("rekognition")
    assert StateTaskServiceAwsSdk._normalise_exception_name(service, error) == expected
