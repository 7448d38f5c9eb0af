"""Conformance: DetectCustomLabels and DetectModerationLabels, and their error conditions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from tests.engine.conftest import (
    BUCKET,
    make_project_with_datasets,
    train_version,
    upload_colour_set,
    wait_dataset,
    wait_version,
)
from tests.engine.imaging import colour_image, to_jpeg, to_png


def code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


@pytest.fixture
def model(rk: Any, s3: Any) -> dict[str, Any]:
    """A RUNNING colour model (red / blue)."""
    made = make_project_with_datasets(rk, s3, "detect", per_label=6)
    arn = train_version(rk, made["project"])["ProjectVersionArn"]
    rk.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
    assert wait_version(rk, made["project"], "v1", ("STARTING",))["Status"] == "RUNNING"
    return {"arn": arn, **made}


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


def test_detect_needs_a_running_model(rk: Any, s3: Any) -> None:
    made = make_project_with_datasets(rk, s3, "stopped", per_label=3)
    arn = train_version(rk, made["project"])["ProjectVersionArn"]
    with pytest.raises(ClientError) as info:
        rk.detect_custom_labels(ProjectVersionArn=arn, Image={"Bytes": colour_image("red", 1)})
    assert code(info) == "ResourceNotReadyException"


def test_moderation_without_adapter_is_an_honest_error(rk: Any) -> None:
    with pytest.raises(ClientError) as info:
        rk.detect_moderation_labels(Image={"Bytes": colour_image("red", 1)})
    assert code(info) == "InvalidParameterException"
    assert "no base content-moderation model" in info.value.response["Error"]["Message"]


def test_moderation_with_an_adapter(rk: Any, s3: Any) -> None:
    # Given a CONTENT_MODERATION project trained on two classes
    project = rk.create_project(ProjectName="moderation", Feature="CONTENT_MODERATION", AutoUpdate="ENABLED")[
        "ProjectArn"
    ]
    for dataset_type, per_label in (("TRAIN", 6), ("TEST", 3)):
        arn = rk.create_dataset(ProjectArn=project, DatasetType=dataset_type)["DatasetArn"]
        wait_dataset(rk, arn)
        lines = upload_colour_set(s3, f"mod/{dataset_type}", per_label)
        rk.update_dataset_entries(DatasetArn=arn, Changes={"GroundTruth": "\n".join(lines).encode()})
        wait_dataset(rk, arn)
    rk.create_project_version(
        ProjectArn=project,
        VersionName="adapter1",
        OutputConfig={"S3Bucket": BUCKET},
        FeatureConfig={"ContentModeration": {"ConfidenceThreshold": 60.0}},
    )
    adapter = wait_version(rk, project, "adapter1", ("TRAINING_IN_PROGRESS",))
    assert adapter["Status"] == "TRAINING_COMPLETED"
    assert adapter["Feature"] == "CONTENT_MODERATION"
    assert adapter["FeatureConfig"] == {"ContentModeration": {"ConfidenceThreshold": 60.0}}
    assert adapter["BaseModelVersion"]
    # When
    response = rk.detect_moderation_labels(
        Image={"Bytes": colour_image("blue", 4242)}, ProjectVersion=adapter["ProjectVersionArn"]
    )
    # Then
    assert response["ModerationLabels"][0]["Name"] == "blue"
    assert response["ProjectVersion"] == adapter["ProjectVersionArn"]
    assert response["ModerationModelVersion"]
    # An adapter is not started, nor used by DetectCustomLabels
    with pytest.raises(ClientError) as info:
        rk.start_project_version(ProjectVersionArn=adapter["ProjectVersionArn"], MinInferenceUnits=1)
    assert code(info) == "InvalidParameterException"
    with pytest.raises(ClientError) as info:
        rk.detect_custom_labels(
            ProjectVersionArn=adapter["ProjectVersionArn"], Image={"Bytes": colour_image("red", 3)}
        )
    assert code(info) == "InvalidParameterException"


def test_moderation_adapter_must_belong_to_a_moderation_project(rk: Any, model: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as info:
        rk.detect_moderation_labels(Image={"Bytes": colour_image("red", 1)}, ProjectVersion=model["arn"])
    assert code(info) == "InvalidParameterException"
