"""Conformance: detection needs a RUNNING model; DetectModerationLabels with and without an adapter."""

from __future__ import annotations

from typing import Any

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
from tests.engine.imaging import colour_image


def code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


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
