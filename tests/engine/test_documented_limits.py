"""Documented behaviours checked against the engine: the 5,242,880-byte UpdateDatasetEntries limit
end to end through the ingestion flusher, and DetectCustomLabels on a STOPPED version."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdas.common.settings import AppSettings, ProjectSettings
from lambdas.ingestion.datasets import DatasetGateway
from lambdas.ingestion.lines import Line
from lambdas.ingestion.service import Flusher
from lambdas.ingestion.staging import StagedBatch
from tests.engine.conftest import (
    BUCKET,
    make_project_with_datasets,
    train_version,
    wait_dataset,
    wait_version,
)
from tests.engine.imaging import classification_line, colour_image

FIVE_MB = 5_242_880


class OneBatchStore:
    """A staging store holding one batch of lines."""

    def __init__(self, lines: list[Line]) -> None:
        self.batches_left = [StagedBatch("STAGED#TRAIN#00001", [(line, "1") for line in lines])]

    def batches(self, project: str, dataset_type: str, max_lines: int) -> list[StagedBatch]:
        return list(self.batches_left)

    def remove(self, project: str, dataset_type: str, batches: list[StagedBatch]) -> None:
        self.batches_left = [b for b in self.batches_left if b not in batches]

    def count_attempt(self, project: str, batch: StagedBatch) -> None:
        raise AssertionError(f"no update may fail: {batch.sk}")

    # Ordering tokens and the service-error streak: nothing applied before, no streak.
    def applied_seqs(self, project: str, dataset_type: str, dataset_arn: str, refs: Any) -> dict[str, str]:
        return {}

    def record_applied(self, project: str, dataset_type: str, dataset_arn: str, versions: Any) -> None:
        pass

    def retry_streak(self, project: str, dataset_type: str) -> None:
        return None

    def save_retry_streak(self, project: str, dataset_type: str, streak: Any) -> None:
        raise AssertionError("no update may fail with a service error")

    def clear_retry_streak(self, project: str, dataset_type: str) -> None:
        pass

    def project_task(self, project: str, proposed: str) -> str:
        return proposed


class FreeLease:
    def acquire(self, project: str, dataset_type: str, owner: str, seconds: float) -> bool:
        return True

    def release(self, project: str, dataset_type: str, owner: str) -> None:
        pass


class Events:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, event_type: str, project: str, **detail: Any) -> dict[str, Any]:
        self.published.append((event_type, detail))
        return detail


def test_more_than_5_mb_of_lines_go_out_in_updates_the_engine_accepts(rk: Any, s3: Any) -> None:
    # Given 6,000 staged lines of about 1 KB each: 5.9 MB in all, more than one update may carry
    lines = [
        Line(uri, classification_line(uri, "red" if i % 2 else "blue"))
        for i in range(6000)
        for uri in [f"s3://{BUCKET}/big/{i:05d}-{'k' * 800}.png"]
    ]
    total = sum(line.size for line in lines) - 1
    assert total > FIVE_MB
    flusher = Flusher(
        store=OneBatchStore(lines),  # type: ignore[arg-type]
        lease=FreeLease(),  # type: ignore[arg-type]
        gateway=DatasetGateway(rk, poll_seconds=0.02),
        publisher=Events(),
        clock=time.monotonic,
    )
    # When the flusher applies them with its defaults
    result = flusher.flush(
        "big",
        "TRAIN",
        settings=AppSettings(projects={"big": ProjectSettings()}),
        owner="test",
        deadline=time.monotonic() + 120,
    )
    # Then two updates carried them (each within 5,242,880 bytes, or the engine refuses it) and
    # every line is in the dataset
    assert (result.status, result.calls, result.sent) == ("done", 2, 6000)
    project = rk.describe_projects(ProjectNames=["big"])["ProjectDescriptions"][0]
    train = next(d for d in project["Datasets"] if d["DatasetType"] == "TRAIN")["DatasetArn"]
    assert wait_dataset(rk, train)["DatasetStats"]["TotalEntries"] == 6000


def test_the_engine_refuses_one_byte_over_5_242_880(rk: Any, s3: Any) -> None:
    project = rk.create_project(ProjectName="limit")["ProjectArn"]
    train = rk.create_dataset(ProjectArn=project, DatasetType="TRAIN")["DatasetArn"]
    wait_dataset(rk, train)
    line = classification_line(f"s3://{BUCKET}/l/1.png", "red")
    blob = (line + " " * (FIVE_MB + 1 - len(line))).encode()
    assert len(blob) == FIVE_MB + 1
    with pytest.raises(ClientError) as info:
        rk.update_dataset_entries(DatasetArn=train, Changes={"GroundTruth": blob})
    assert info.value.response["Error"]["Code"] == "ValidationException"


def test_detection_on_a_stopped_version_is_not_ready(rk: Any, s3: Any) -> None:
    # Given a version that ran and was stopped
    made = make_project_with_datasets(rk, s3, "stopping", per_label=3)
    arn = train_version(rk, made["project"])["ProjectVersionArn"]
    rk.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
    assert wait_version(rk, made["project"], "v1", ("STARTING",))["Status"] == "RUNNING"
    image = {"Bytes": colour_image("red", 7)}
    assert "CustomLabels" in rk.detect_custom_labels(ProjectVersionArn=arn, Image=image)
    rk.stop_project_version(ProjectVersionArn=arn)
    assert wait_version(rk, made["project"], "v1", ("STOPPING",))["Status"] == "STOPPED"
    # When an image is sent to it / Then the service answers ResourceNotReadyException
    with pytest.raises(ClientError) as info:
        rk.detect_custom_labels(ProjectVersionArn=arn, Image=image)
    assert info.value.response["Error"]["Code"] == "ResourceNotReadyException"
