"""Every operation once, in a realistic order, each raw response checked against its output shape;
plus the AWS CLI and concurrent clients."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from autopilot.engine.operations import OPERATIONS as SERVED
from autopilot.engine.testing import RunningEngine
from tests.engine.conftest import BUCKET, upload_colour_set, wait_dataset, wait_version
from tests.engine.imaging import colour_image
from tests.engine.shapes import ShapeRecorder

OPERATIONS = {
    "CreateProject",
    "DescribeProjects",
    "DeleteProject",
    "CreateDataset",
    "DescribeDataset",
    "DeleteDataset",
    "UpdateDatasetEntries",
    "DistributeDatasetEntries",
    "ListDatasetEntries",
    "ListDatasetLabels",
    "CreateProjectVersion",
    "DescribeProjectVersions",
    "DeleteProjectVersion",
    "StartProjectVersion",
    "StopProjectVersion",
    "DetectCustomLabels",
    "DetectModerationLabels",
}


def test_every_operation_is_served() -> None:
    assert set(SERVED) == OPERATIONS


def test_tour_of_every_operation(running: RunningEngine, s3: Any) -> None:
    rk = running.client()
    recorder = ShapeRecorder(rk)
    # Custom Labels: project, datasets, entries, distribution, training, serving, clean-up
    project = rk.create_project(ProjectName="tour")["ProjectArn"]
    assert rk.describe_projects()["ProjectDescriptions"][0]["ProjectArn"] == project
    train = rk.create_dataset(ProjectArn=project, DatasetType="TRAIN")["DatasetArn"]
    test = rk.create_dataset(ProjectArn=project, DatasetType="TEST")["DatasetArn"]
    wait_dataset(rk, train)
    wait_dataset(rk, test)
    lines = upload_colour_set(s3, "tour", 10)
    rk.update_dataset_entries(DatasetArn=train, Changes={"GroundTruth": "\n".join(lines).encode()})
    wait_dataset(rk, train)
    rk.distribute_dataset_entries(Datasets=[{"Arn": train}, {"Arn": test}])
    wait_dataset(rk, train)
    wait_dataset(rk, test)
    assert len(rk.list_dataset_entries(DatasetArn=test)["DatasetEntries"]) == 4
    assert len(rk.list_dataset_labels(DatasetArn=train)["DatasetLabelDescriptions"]) == 2
    rk.create_project_version(ProjectArn=project, VersionName="v1", OutputConfig={"S3Bucket": BUCKET})
    version = wait_version(rk, project, "v1", ("TRAINING_IN_PROGRESS",))
    arn = version["ProjectVersionArn"]
    rk.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
    wait_version(rk, project, "v1", ("STARTING",))
    labels = rk.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": colour_image("blue", 1)})
    assert labels["CustomLabels"][0]["Name"] == "blue"
    rk.stop_project_version(ProjectVersionArn=arn)
    wait_version(rk, project, "v1", ("STOPPING",))
    rk.delete_project_version(ProjectVersionArn=arn)
    # Content moderation: an adapter trained from a copy of the same data
    moderation = rk.create_project(
        ProjectName="tour-mod", Feature="CONTENT_MODERATION", AutoUpdate="DISABLED"
    )["ProjectArn"]
    for dataset_type, source in (("TRAIN", train), ("TEST", test)):
        copy = rk.create_dataset(
            ProjectArn=moderation, DatasetType=dataset_type, DatasetSource={"DatasetArn": source}
        )
        wait_dataset(rk, copy["DatasetArn"])
    rk.create_project_version(ProjectArn=moderation, VersionName="a1", OutputConfig={"S3Bucket": BUCKET})
    adapter = wait_version(rk, moderation, "a1", ("TRAINING_IN_PROGRESS",))["ProjectVersionArn"]
    result = rk.detect_moderation_labels(Image={"Bytes": colour_image("red", 2)}, ProjectVersion=adapter)
    assert result["ModerationLabels"][0]["Name"] == "red"
    # Clean-up
    rk.delete_dataset(DatasetArn=train)
    rk.delete_dataset(DatasetArn=test)
    deadline = time.monotonic() + 10
    while (
        rk.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"]
        or rk.describe_projects(ProjectNames=["tour"])["ProjectDescriptions"][0]["Datasets"]
    ):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert rk.delete_project(ProjectArn=project)["Status"] == "DELETING"
    # Then every operation answered, in its output shape
    assert recorder.checked == OPERATIONS
    assert recorder.found == []


def test_concurrent_clients(running: RunningEngine, s3: Any) -> None:
    # Given several projects updated and read from many threads at once
    def work(index: int) -> int:
        rk = running.client()
        project = rk.create_project(ProjectName=f"c{index}")["ProjectArn"]
        train = rk.create_dataset(ProjectArn=project, DatasetType="TRAIN")["DatasetArn"]
        wait_dataset(rk, train)
        lines = [
            json.dumps(
                {
                    "source-ref": f"s3://{BUCKET}/c{index}/{i}.png",
                    "l": 1,
                    "l-metadata": {"class-name": f"label{i % 3}", "type": "groundtruth/image-classification"},
                }
            )
            for i in range(30)
        ]
        rk.update_dataset_entries(DatasetArn=train, Changes={"GroundTruth": "\n".join(lines).encode()})
        return int(wait_dataset(rk, train)["DatasetStats"]["TotalEntries"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        totals = list(pool.map(work, range(8)))
    # Then every update is complete and exact
    assert totals == [30] * 8
    assert len(running.client().describe_projects()["ProjectDescriptions"]) == 8


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_aws_cli_reaches_the_engine(running: RunningEngine) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL_REKOGNITION": running.url, "AWS_DEFAULT_REGION": "us-east-1"}
    created = subprocess.run(
        ["aws", "rekognition", "create-project", "--project-name", "from-cli", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    arn = json.loads(created.stdout)["ProjectArn"]
    described = subprocess.run(
        ["aws", "rekognition", "describe-projects", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert json.loads(described.stdout)["ProjectDescriptions"][0]["ProjectArn"] == arn
    failed = subprocess.run(
        ["aws", "rekognition", "describe-projects", "--max-results", "101"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert failed.returncode != 0 and "ValidationException" in failed.stderr
