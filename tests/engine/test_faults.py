"""Fault injection: throttling, internal errors, failed updates, trainings and starts, on demand."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from autopilot.engine.testing import RunningEngine
from tests.engine.conftest import (
    BUCKET,
    make_project_with_datasets,
    train_version,
    wait_dataset,
    wait_version,
)
from tests.engine.imaging import classification_line


def no_retries(running: RunningEngine) -> Any:
    return boto3.client(
        "rekognition",
        endpoint_url=running.url,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def test_throttle_and_internal_error(running: RunningEngine) -> None:
    client = no_retries(running)
    # Given two throttles and one internal error armed for DescribeProjects
    running.faults.throttle("DescribeProjects", count=2)
    running.faults.fail("DescribeProjects")
    # Then
    for expected in ("ThrottlingException", "ThrottlingException", "InternalServerError"):
        with pytest.raises(ClientError) as info:
            client.describe_projects()
        assert info.value.response["Error"]["Code"] == expected
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert client.describe_projects()["ProjectDescriptions"] == []
    # Other operations were never affected
    assert running.faults.list() == []


@pytest.mark.parametrize("status", [500, 400])
def test_throttling_answers_the_configured_http_status(s3: Any, status: int) -> None:
    # The API reference gives HTTP 500 (the default); the Developer Guide also lists it under 400.
    from autopilot.engine.testing import running_engine

    with running_engine(time_scale=0.01, throttling_status=status) as engine:
        engine.faults.throttle("DescribeProjects")
        with pytest.raises(ClientError) as info:
            no_retries(engine).describe_projects()  # type: ignore[arg-type]
        assert info.value.response["Error"]["Code"] == "ThrottlingException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_throttling_defaults_to_http_500(running: RunningEngine) -> None:
    running.faults.throttle("DescribeProjects")
    with pytest.raises(ClientError) as info:
        no_retries(running).describe_projects()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_standard_retries_ride_over_throttling(running: RunningEngine) -> None:
    running.faults.throttle("CreateProject", count=2)
    client = boto3.client(
        "rekognition",
        endpoint_url=running.url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 5, "mode": "standard"}),
    )
    response = client.create_project(ProjectName="retried")
    assert response["ResponseMetadata"]["RetryAttempts"] == 2


def test_fault_restricted_to_a_project(running: RunningEngine) -> None:
    client = no_retries(running)
    client.create_project(ProjectName="calm")
    running.faults.fail("CreateProject", project="stormy", code="LimitExceededException", count=-1)
    with pytest.raises(ClientError) as info:
        client.create_project(ProjectName="stormy")
    assert info.value.response["Error"]["Code"] == "LimitExceededException"
    client.create_project(ProjectName="other")
    running.faults.clear()
    client.create_project(ProjectName="stormy")


def test_dataset_update_failed(rk: Any, s3: Any, running: RunningEngine) -> None:
    project = rk.create_project(ProjectName="flaky")["ProjectArn"]
    train = rk.create_dataset(ProjectArn=project, DatasetType="TRAIN")["DatasetArn"]
    wait_dataset(rk, train)
    running.faults.fail_dataset_update()
    rk.update_dataset_entries(
        DatasetArn=train, Changes={"GroundTruth": classification_line(f"s3://{BUCKET}/a.png", "a").encode()}
    )
    description = wait_dataset(rk, train)
    assert (description["Status"], description["StatusMessageCode"]) == ("UPDATE_FAILED", "SERVICE_ERROR")
    assert description["DatasetStats"]["TotalEntries"] == 0
    # The next update goes through
    rk.update_dataset_entries(
        DatasetArn=train, Changes={"GroundTruth": classification_line(f"s3://{BUCKET}/a.png", "a").encode()}
    )
    assert wait_dataset(rk, train)["Status"] == "UPDATE_COMPLETE"


def test_training_failed_and_start_failed(rk: Any, s3: Any, running: RunningEngine) -> None:
    made = make_project_with_datasets(rk, s3, "unlucky", per_label=3)
    running.faults.fail_training(message="Simulated capacity problem.")
    failed = train_version(rk, made["project"], "v1")
    assert (failed["Status"], failed["StatusMessage"]) == ("TRAINING_FAILED", "Simulated capacity problem.")
    trained = train_version(rk, made["project"], "v2")
    assert trained["Status"] == "TRAINING_COMPLETED"
    running.faults.fail_start()
    rk.start_project_version(ProjectVersionArn=trained["ProjectVersionArn"], MinInferenceUnits=1)
    assert wait_version(rk, made["project"], "v2", ("STARTING",))["Status"] == "FAILED"
    # A failed start can be retried
    rk.start_project_version(ProjectVersionArn=trained["ProjectVersionArn"], MinInferenceUnits=1)
    assert wait_version(rk, made["project"], "v2", ("STARTING",))["Status"] == "RUNNING"


def _post(url: str, body: Any, method: str = "POST") -> tuple[int, Any]:
    request = urllib.request.Request(
        url + "/_engine/faults",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_faults_over_http(running: RunningEngine) -> None:
    client = no_retries(running)
    status, body = _post(running.url, {"kind": "throttle", "operation": "DescribeProjects", "count": 1})
    assert status == 200 and len(body["faults"]) == 1
    with pytest.raises(ClientError) as info:
        client.describe_projects()
    assert info.value.response["Error"]["Code"] == "ThrottlingException"
    status, body = _post(running.url, {"kind": "explode"})
    assert status == 400 and "kind" in body["error"]
    _post(running.url, [{"kind": "error", "operation": "CreateProject"}, {"kind": "training_failed"}])
    status, body = _post(running.url, None, method="GET")
    assert [f["kind"] for f in body["faults"]] == ["error", "training_failed"]
    _post(running.url, None, method="DELETE")
    assert running.faults.list() == []
