"""Conformance: DetectCustomLabels on a running model, and its error conditions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from autopilot.engine.testing import running_engine
from tests.engine.conftest import BUCKET, FAST, make_project_with_datasets, train_version, wait_version
from tests.engine.imaging import colour_image, to_jpeg, to_png
from tests.engine.shapes import ShapeRecorder


def code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Any, Any, dict[str, Any]]]:
    """One RUNNING colour model (red / blue) for the read-only detection tests of this module."""
    with mock_aws(), running_engine(time_scale=FAST) as engine:
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        rk = engine.client()
        recorder = ShapeRecorder(rk)
        made = make_project_with_datasets(rk, s3, "detect", per_label=6)
        arn = train_version(rk, made["project"])["ProjectVersionArn"]
        rk.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
        assert wait_version(rk, made["project"], "v1", ("STARTING",))["Status"] == "RUNNING"
        yield rk, s3, {"arn": arn, **made}
        assert recorder.found == [], recorder.found


@pytest.fixture
def rk(shared: tuple[Any, Any, dict[str, Any]]) -> Any:
    return shared[0]


@pytest.fixture
def s3(shared: tuple[Any, Any, dict[str, Any]]) -> Any:
    return shared[1]


@pytest.fixture
def model(shared: tuple[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    return shared[2]


def test_detect_from_s3_and_bytes(rk: Any, s3: Any, model: dict[str, Any]) -> None:
    # Given a red image in S3 and a blue image as bytes
    s3.put_object(Bucket=BUCKET, Key="inference/red.png", Body=colour_image("red", 99_001))
    # When
    red = rk.detect_custom_labels(
        ProjectVersionArn=model["arn"], Image={"S3Object": {"Bucket": BUCKET, "Name": "inference/red.png"}}
    )["CustomLabels"]
    blue = rk.detect_custom_labels(
        ProjectVersionArn=model["arn"], Image={"Bytes": colour_image("blue", 99_002)}
    )["CustomLabels"]
    # Then (labels above their assumed thresholds only)
    assert [label["Name"] for label in red] == ["red"]
    assert [label["Name"] for label in blue] == ["blue"]
    assert "Geometry" not in red[0]
    assert 0 <= red[0]["Confidence"] <= 100


def test_min_confidence_and_max_results(rk: Any, model: dict[str, Any]) -> None:
    image = {"Bytes": colour_image("red", 99_003)}
    everything = rk.detect_custom_labels(ProjectVersionArn=model["arn"], Image=image, MinConfidence=0)[
        "CustomLabels"
    ]
    assert [label["Name"] for label in everything] == ["red", "blue"]
    assert everything[0]["Confidence"] >= everything[1]["Confidence"]
    top = rk.detect_custom_labels(ProjectVersionArn=model["arn"], Image=image, MinConfidence=0, MaxResults=1)
    assert [label["Name"] for label in top["CustomLabels"]] == ["red"]
    none = rk.detect_custom_labels(ProjectVersionArn=model["arn"], Image=image, MinConfidence=100)
    assert all(label["Confidence"] >= 100 for label in none["CustomLabels"])
    with pytest.raises(ClientError) as info:
        rk.detect_custom_labels(ProjectVersionArn=model["arn"], Image=image, MinConfidence=101)
    assert code(info) == "ValidationException"


def test_jpeg_is_accepted(rk: Any, model: dict[str, Any]) -> None:
    rng = np.random.default_rng(5)
    array = np.clip(np.array([30, 40, 200]) + rng.normal(0, 20, (80, 120, 3)), 0, 255)
    labels = rk.detect_custom_labels(
        ProjectVersionArn=model["arn"], Image={"Bytes": to_jpeg(array)}, MinConfidence=0
    )
    assert labels["CustomLabels"][0]["Name"] == "blue"


@pytest.mark.parametrize(
    ("image", "error"),
    [
        ({"Bytes": b"GIF89a not supported"}, "InvalidImageFormatException"),
        ({"Bytes": to_png(np.zeros((32, 32, 3)))}, "InvalidParameterException"),
        ({"Bytes": to_png(np.zeros((64, 64 * 21, 3)))}, "InvalidParameterException"),
        ({"Bytes": b"\x89PNG\r\n\x1a\n" + b"\0" * (4 * 1024 * 1024 + 1)}, "ImageTooLargeException"),
        ({"S3Object": {"Bucket": BUCKET, "Name": "nothing-here.png"}}, "InvalidS3ObjectException"),
        ({}, "InvalidParameterException"),
    ],
)
def test_detect_rejects_bad_images(rk: Any, model: dict[str, Any], image: dict[str, Any], error: str) -> None:
    with pytest.raises(ClientError) as info:
        rk.detect_custom_labels(ProjectVersionArn=model["arn"], Image=image)
    assert code(info) == error


def test_moderation_adapter_must_belong_to_a_moderation_project(rk: Any, model: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as info:
        rk.detect_moderation_labels(Image={"Bytes": colour_image("red", 1)}, ProjectVersion=model["arn"])
    assert code(info) == "InvalidParameterException"
