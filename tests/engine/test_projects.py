"""Conformance: CreateProject, DescribeProjects, DeleteProject, and the generic protocol behaviour."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from autopilot.engine.testing import RunningEngine
from tests.engine.conftest import wait_dataset

ARN = re.compile(r"arn:aws:rekognition:us-east-1:123456789012:project/[a-zA-Z0-9_.\-]+/\d+")


def error_code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def test_create_and_describe_project(rk: Any) -> None:
    # Given / When
    arn = rk.create_project(ProjectName="alpha", Tags={"team": "vision"})["ProjectArn"]
    # Then
    assert ARN.fullmatch(arn)
    description = rk.describe_projects(ProjectNames=["alpha"])["ProjectDescriptions"][0]
    assert description["ProjectArn"] == arn
    assert description["Status"] == "CREATED"
    assert description["Feature"] == "CUSTOM_LABELS"
    assert description["Datasets"] == []
    assert "AutoUpdate" not in description


def test_describe_projects_filters_custom_labels_by_default(rk: Any) -> None:
    # Given a Custom Labels project and a moderation project
    rk.create_project(ProjectName="labels")
    rk.create_project(ProjectName="moderation", Feature="CONTENT_MODERATION", AutoUpdate="DISABLED")
    # When
    default = rk.describe_projects()["ProjectDescriptions"]
    moderation = rk.describe_projects(Features=["CONTENT_MODERATION"])["ProjectDescriptions"]
    both = rk.describe_projects(Features=["CONTENT_MODERATION", "CUSTOM_LABELS"])["ProjectDescriptions"]
    # Then
    assert [p["ProjectArn"].split("/")[1] for p in default] == ["labels"]
    assert [(p["Feature"], p["AutoUpdate"]) for p in moderation] == [("CONTENT_MODERATION", "DISABLED")]
    assert len(both) == 2


def test_describe_projects_paginates(rk: Any) -> None:
    # Given
    for i in range(5):
        rk.create_project(ProjectName=f"p{i}")
    # When
    names: list[str] = []
    token = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"MaxResults": 2}
        if token:
            kwargs["NextToken"] = token
        response = rk.describe_projects(**kwargs)
        names += [p["ProjectArn"].split("/")[1] for p in response["ProjectDescriptions"]]
        pages += 1
        token = response.get("NextToken")
        if not token:
            break
    # Then
    assert pages == 3
    assert sorted(names) == [f"p{i}" for i in range(5)]
    assert names == [f"p{i}" for i in reversed(range(5))]  # newest first


def test_describe_projects_paginator(rk: Any) -> None:
    for i in range(3):
        rk.create_project(ProjectName=f"q{i}")
    pages = list(rk.get_paginator("describe_projects").paginate(PaginationConfig={"PageSize": 1}))
    assert sum(len(p["ProjectDescriptions"]) for p in pages) == 3


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"MaxResults": 101}, "ValidationException"),
        ({"ProjectNames": [f"n{i}" for i in range(11)]}, "ValidationException"),
        ({"NextToken": "not-a-token"}, "InvalidPaginationTokenException"),
        ({"Features": ["CUSTOM_LABELS", "CONTENT_MODERATION", "CUSTOM_LABELS"]}, "ValidationException"),
    ],
)
def test_describe_projects_rejects_bad_input(rk: Any, kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as info:
        rk.describe_projects(**kwargs)
    assert error_code(info) == code


def test_max_results_above_100_names_the_constraint(rk: Any) -> None:
    with pytest.raises(ClientError) as info:
        rk.describe_projects(MaxResults=101)
    assert "less than or equal to 100" in info.value.response["Error"]["Message"]
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"ProjectName": "bad name!"}, "ValidationException"),
        ({"ProjectName": "x" * 256}, "ValidationException"),
        ({"ProjectName": "ok", "Feature": "FACES"}, "ValidationException"),
        ({"ProjectName": "ok", "Feature": "CONTENT_MODERATION"}, "InvalidParameterException"),
        ({"ProjectName": "ok", "Tags": {"aws:reserved": "x"}}, "ValidationException"),
    ],
)
def test_create_project_rejects_bad_input(rk: Any, kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as info:
        rk.create_project(**kwargs)
    assert error_code(info) == code


def test_create_project_twice_is_in_use(rk: Any) -> None:
    rk.create_project(ProjectName="twice")
    with pytest.raises(ClientError) as info:
        rk.create_project(ProjectName="twice")
    assert error_code(info) == "ResourceInUseException"


def test_projects_are_regional(running: RunningEngine) -> None:
    # Given the same name in two regions (region from the SigV4 credential scope)
    east, west = running.client("us-east-1"), running.client("eu-west-1")
    east_arn = east.create_project(ProjectName="regional")["ProjectArn"]
    west_arn = west.create_project(ProjectName="regional")["ProjectArn"]
    # Then
    assert ":us-east-1:" in east_arn and ":eu-west-1:" in west_arn
    assert len(west.describe_projects()["ProjectDescriptions"]) == 1


def test_delete_project(rk: Any) -> None:
    # Given a project with a dataset
    arn = rk.create_project(ProjectName="doomed")["ProjectArn"]
    dataset = rk.create_dataset(ProjectArn=arn, DatasetType="TRAIN")["DatasetArn"]
    wait_dataset(rk, dataset)
    # Then it cannot be deleted while the dataset remains (Developer Guide, "Deleting a project (SDK)")
    with pytest.raises(ClientError) as refused:
        rk.delete_project(ProjectArn=arn)
    assert error_code(refused) == "ResourceInUseException"
    # When the dataset is deleted and gone
    rk.delete_dataset(DatasetArn=dataset)
    deadline = time.monotonic() + 10
    while rk.describe_projects(ProjectNames=["doomed"])["ProjectDescriptions"][0]["Datasets"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    status = rk.delete_project(ProjectArn=arn)["Status"]
    # Then
    assert status == "DELETING"
    deadline = time.monotonic() + 10
    while (
        rk.describe_projects(ProjectNames=["doomed"])["ProjectDescriptions"] and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    assert rk.describe_projects(ProjectNames=["doomed"])["ProjectDescriptions"] == []
    with pytest.raises(ClientError) as info:
        rk.delete_project(ProjectArn=arn)
    assert error_code(info) == "ResourceNotFoundException"


def test_delete_project_with_datasets_when_configured_like_the_api_reference(s3: Any) -> None:
    from autopilot.engine.testing import running_engine

    with running_engine(time_scale=0.01, delete_project_requires_no_datasets=False) as engine:
        rk = engine.client()
        arn = rk.create_project(ProjectName="lenient")["ProjectArn"]
        wait_dataset(rk, rk.create_dataset(ProjectArn=arn, DatasetType="TRAIN")["DatasetArn"])
        assert rk.delete_project(ProjectArn=arn)["Status"] == "DELETING"


def test_unknown_project_is_not_found(rk: Any) -> None:
    with pytest.raises(ClientError) as info:
        rk.delete_project(ProjectArn="arn:aws:rekognition:us-east-1:123456789012:project/ghost/1")
    assert error_code(info) == "ResourceNotFoundException"


def _raw(url: str, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_raw_protocol_errors_are_aws_shaped(running: RunningEngine) -> None:
    # Unknown operation, malformed JSON, unknown member, missing required member
    status, body = _raw(running.url, "RekognitionService.Nope", b"{}")
    assert status == 400 and body["__type"] == "UnknownOperationException"
    status, body = _raw(running.url, "RekognitionService.CreateProject", b"{not json")
    assert status == 400 and body["__type"] == "SerializationException"
    status, body = _raw(running.url, "RekognitionService.CreateProject", b'{"ProjectName": "a", "Bogus": 1}')
    assert status == 400 and body["__type"] == "InvalidParameterException"
    status, body = _raw(running.url, "RekognitionService.CreateProject", b"{}")
    assert (
        status == 400 and body["__type"] == "InvalidParameterException" and "ProjectName" in body["Message"]
    )
    status, body = _raw(running.url, "RekognitionService.CreateProject", b'{"ProjectName": "raw"}')
    assert status == 200 and body["ProjectArn"].endswith(body["ProjectArn"].split("/")[-1])
