"""Fixtures of the engine tests: moto S3 with a bucket, a running engine, bounded waiters."""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from autopilot.engine.clock import Clock
from autopilot.engine.testing import RunningEngine, running_engine
from tests.engine.imaging import classification_line, colour_image
from tests.engine.shapes import ShapeRecorder

BUCKET = "engine-test-bucket"
FAST = 0.001  # time scale of the engine tests: simulated durations of a few hundred ms


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def running() -> Iterator[RunningEngine]:
    """A fast engine. Tests that need S3 also ask for ``s3`` (the engine's S3 client is created lazily)."""
    with running_engine(time_scale=FAST) as engine:
        yield engine


@pytest.fixture
def rk(running: RunningEngine) -> Iterator[Any]:
    client = running.client()
    recorder = ShapeRecorder(client)
    yield client
    assert recorder.found == [], recorder.found


def unchecked(client: Any) -> Any:
    """A client to the same engine without botocore's client-side validation (server checks only)."""
    return boto3.client(
        "rekognition",
        endpoint_url=client.meta.endpoint_url,
        region_name=client.meta.region_name,
        config=Config(parameter_validation=False),
    )


def wait_dataset(rk: Any, arn: str, timeout: float = 20.0) -> dict[str, Any]:
    """Polls DescribeDataset until the dataset leaves *_IN_PROGRESS (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        description: dict[str, Any] = rk.describe_dataset(DatasetArn=arn)["DatasetDescription"]
        if not description["Status"].endswith("_IN_PROGRESS"):
            return description
        if time.monotonic() > deadline:
            raise AssertionError(f"dataset {arn} still {description['Status']} after {timeout} s")
        time.sleep(0.02)


def wait_version(
    rk: Any, project_arn: str, name: str, leaving: tuple[str, ...], timeout: float = 120.0
) -> dict[str, Any]:
    """Polls DescribeProjectVersions until the version's status is not in ``leaving`` (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        found = rk.describe_project_versions(ProjectArn=project_arn, VersionNames=[name])
        description: dict[str, Any] = found["ProjectVersionDescriptions"][0]
        if description["Status"] not in leaving:
            return description
        if time.monotonic() > deadline:
            raise AssertionError(f"version {name} still {description['Status']} after {timeout} s")
        time.sleep(0.05)


def upload_colour_set(
    s3: Any, prefix: str, per_label: int, labels: tuple[str, ...] = ("red", "blue")
) -> list[str]:
    """Uploads colour images and returns their classification manifest lines."""
    lines = []
    for label in labels:
        for i in range(per_label):
            key = f"{prefix}/{label}/{i}.png"
            s3.put_object(Bucket=BUCKET, Key=key, Body=colour_image(label, seed=zlib.crc32(key.encode())))
            lines.append(classification_line(f"s3://{BUCKET}/{key}", label))
    return lines


def make_project_with_datasets(rk: Any, s3: Any, name: str, per_label: int = 8) -> dict[str, str]:
    """A project with TRAIN and TEST datasets of colour images, ready to train."""
    project = rk.create_project(ProjectName=name)["ProjectArn"]
    train = rk.create_dataset(ProjectArn=project, DatasetType="TRAIN")["DatasetArn"]
    test = rk.create_dataset(ProjectArn=project, DatasetType="TEST")["DatasetArn"]
    wait_dataset(rk, train)
    wait_dataset(rk, test)
    rk.update_dataset_entries(
        DatasetArn=train,
        Changes={"GroundTruth": "\n".join(upload_colour_set(s3, f"{name}/train", per_label)).encode()},
    )
    rk.update_dataset_entries(
        DatasetArn=test, Changes={"GroundTruth": "\n".join(upload_colour_set(s3, f"{name}/test", 3)).encode()}
    )
    assert wait_dataset(rk, train)["Status"] == "UPDATE_COMPLETE"
    assert wait_dataset(rk, test)["Status"] == "UPDATE_COMPLETE"
    return {"project": project, "train": train, "test": test}


def train_version(rk: Any, project: str, name: str = "v1") -> dict[str, Any]:
    rk.create_project_version(
        ProjectArn=project,
        VersionName=name,
        OutputConfig={"S3Bucket": BUCKET, "S3KeyPrefix": "training-output"},
    )
    return wait_version(rk, project, name, ("TRAINING_IN_PROGRESS",))


@pytest.fixture
def patient(s3: Any) -> Iterator[Any]:
    """A client of a slower engine (time scale 0.05: updates take 1 s) to observe *_IN_PROGRESS states."""
    with running_engine(time_scale=0.05) as engine:
        yield engine.client()


class HeldClock:
    """The engine's clock, which a test can hold still: nothing pending completes while it is held,
    so an *_IN_PROGRESS state is observed for as long as the test needs, whatever the machine's load."""

    def __init__(self) -> None:
        self._held_at: float | None = None

    def now(self) -> float:
        return self._held_at if self._held_at is not None else time.time()

    def hold(self) -> None:
        self._held_at = time.time()

    def release(self) -> None:
        self._held_at = None


@pytest.fixture
def paused(s3: Any) -> Iterator[tuple[Any, HeldClock]]:
    """A client of a fast engine whose clock the test holds and releases."""
    clock = HeldClock()
    with running_engine(time_scale=FAST) as engine:
        engine.server.engine.clock = Clock(clock.now)
        yield engine.client(), clock
