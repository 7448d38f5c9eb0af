"""Conformance: project versions (training, evaluation, start/stop, delete) and their error conditions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.engine.conftest import (
    BUCKET,
    make_project_with_datasets,
    train_version,
    unchecked,
    upload_colour_set,
    wait_dataset,
    wait_version,
)
from tests.engine.imaging import classification_line


def code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def test_training_from_datasets_reports_evaluation(rk: Any, s3: Any) -> None:
    # Given
    made = make_project_with_datasets(rk, s3, "colours")
    # When
    arn = rk.create_project_version(
        ProjectArn=made["project"],
        VersionName="v1",
        OutputConfig={"S3Bucket": BUCKET, "S3KeyPrefix": "out"},
        VersionDescription="first model (colours)",
        Tags={"managed-by": "tests"},
        KmsKeyId="alias/aws/rekognition",
    )["ProjectVersionArn"]
    early = rk.describe_project_versions(ProjectArn=made["project"])["ProjectVersionDescriptions"][0]
    description = wait_version(rk, made["project"], "v1", ("TRAINING_IN_PROGRESS",))
    # Then
    assert arn == made["project"].rsplit("/", 1)[0] + "/version/v1/" + arn.rsplit("/", 1)[1]
    assert early["Status"] in ("TRAINING_IN_PROGRESS", "TRAINING_COMPLETED")
    assert description["Status"] == "TRAINING_COMPLETED", description.get("StatusMessage")
    assert description["EvaluationResult"]["F1Score"] >= 0.9
    assert description["BillableTrainingTimeInSeconds"] > 0
    assert description["VersionDescription"] == "first model (colours)"
    assert description["KmsKeyId"] == "alias/aws/rekognition"
    assert description["Feature"] == "CUSTOM_LABELS"
    summary_object = description["EvaluationResult"]["Summary"]["S3Object"]
    assert summary_object["Bucket"] == BUCKET and summary_object["Name"].startswith("out/")
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=summary_object["Name"])["Body"].read())
    assert summary["AggregatedEvaluationResults"]["F1Score"] == pytest.approx(
        description["EvaluationResult"]["F1Score"]
    )
    assert {r["Label"] for r in summary["LabelEvaluationResults"]} == {"red", "blue"}
    assert summary_object["Name"] == "out/EvaluationSummary-colours-v1.json"
    matrix = {
        (c["GroundTruthLabel"], c["PredictedLabel"]): c["Value"]
        for c in summary["AggregatedEvaluationResults"]["ConfusionMatrix"]
    }
    assert matrix[("red", "red")] >= 0.6 and matrix[("blue", "blue")] >= 0.6
    for result in summary["LabelEvaluationResults"]:
        assert 0.0 <= result["Metrics"]["Threshold"] <= 1.0
        assert result["NumberOfTestingImages"] == 3
    assert summary["EvaluationDetails"]["NumberOfTrainingImages"] == 16
    assert summary["EvaluationDetails"]["ProjectVersionArn"] == arn
    manifest = description["TrainingDataResult"]["Output"]["Assets"][0]["GroundTruthManifest"]["S3Object"]
    assert len(s3.get_object(Bucket=BUCKET, Key=manifest["Name"])["Body"].read().splitlines()) == 16
    # The testing snapshot judges every test image's predictions ("Evaluation manifest snapshot")
    testing = description["TestingDataResult"]["Output"]["Assets"][0]["GroundTruthManifest"]["S3Object"]
    lines = [
        json.loads(x) for x in s3.get_object(Bucket=BUCKET, Key=testing["Name"])["Body"].read().splitlines()
    ]
    assert len(lines) == 6
    judged: dict[str, list[dict[str, Any]]] = {"red": [], "blue": []}
    for line in lines:
        evaluations = [
            v
            for k, v in line.items()
            if k.startswith("rekognition-custom-labels-evaluation-") and k.endswith("-metadata")
        ]
        assert evaluations, line
        for meta in evaluations:
            assert meta["type"] == "groundtruth/image-classification" and 0 <= meta["confidence"] <= 1
            judged[meta["class-name"]].append(meta["rekognition-custom-labels-evaluation-details"])
    thresholds = {r["Label"]: r for r in summary["LabelEvaluationResults"]}
    for label, details in judged.items():
        # Each test image of the label is a true positive or a false negative, exactly once
        assert sum(d["is-true-positive"] or d["is-false-negative"] for d in details) == 3
        true_positives = sum(d["is-true-positive"] for d in details)
        predicted = sum(d["is-true-positive"] or d["is-false-positive"] for d in details)
        assert true_positives / 3 == pytest.approx(thresholds[label]["Metrics"]["Recall"], abs=1e-6)
        if predicted:
            assert true_positives / predicted == pytest.approx(
                thresholds[label]["Metrics"]["Precision"], abs=1e-6
            )


def test_version_names_are_unique_and_listed_newest_first(rk: Any, s3: Any) -> None:
    made = make_project_with_datasets(rk, s3, "many", per_label=4)
    for name in ("a", "b", "c"):
        train_version(rk, made["project"], name)
    with pytest.raises(ClientError) as info:
        rk.create_project_version(
            ProjectArn=made["project"], VersionName="a", OutputConfig={"S3Bucket": BUCKET}
        )
    assert code(info) == "ResourceInUseException"
    names = [
        d["ProjectVersionArn"].split("/")[-2]
        for d in rk.describe_project_versions(ProjectArn=made["project"])["ProjectVersionDescriptions"]
    ]
    assert names == ["c", "b", "a"]
    page = rk.describe_project_versions(ProjectArn=made["project"], MaxResults=2)
    assert len(page["ProjectVersionDescriptions"]) == 2
    rest = rk.describe_project_versions(ProjectArn=made["project"], MaxResults=2, NextToken=page["NextToken"])
    assert [d["ProjectVersionArn"].split("/")[-2] for d in rest["ProjectVersionDescriptions"]] == ["a"]
    only = rk.describe_project_versions(ProjectArn=made["project"], VersionNames=["b"])[
        "ProjectVersionDescriptions"
    ]
    assert len(only) == 1
    with pytest.raises(ClientError) as info:
        rk.describe_project_versions(ProjectArn=made["project"], VersionNames=[f"v{i}" for i in range(11)])
    assert code(info) == "ValidationException"
    with pytest.raises(ClientError) as info:
        rk.describe_project_versions(ProjectArn=made["project"], MaxResults=101)
    assert code(info) == "ValidationException"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"VersionName": "bad name"}, "ValidationException"),
        ({"VersionName": "ok", "VersionDescription": "<html>"}, "ValidationException"),
        ({"VersionName": "ok", "KmsKeyId": "-bad"}, "ValidationException"),
        ({"VersionName": "ok", "OutputConfig": {"S3Bucket": "a"}}, "ValidationException"),
        ({"VersionName": "ok", "OutputConfig": {"S3KeyPrefix": "x"}}, "InvalidParameterException"),
        (
            {"VersionName": "ok", "FeatureConfig": {"ContentModeration": {"ConfidenceThreshold": 50.0}}},
            "InvalidParameterException",
        ),
        (
            {
                "VersionName": "ok",
                "TrainingData": {
                    "Assets": [{"GroundTruthManifest": {"S3Object": {"Bucket": BUCKET, "Name": "m"}}}]
                },
            },
            "InvalidParameterException",
        ),
    ],
)
def test_create_project_version_rejects_bad_input(
    rk: Any, s3: Any, kwargs: dict[str, Any], error: str
) -> None:
    made = make_project_with_datasets(rk, s3, "bad", per_label=2)
    kwargs.setdefault("OutputConfig", {"S3Bucket": BUCKET})
    with pytest.raises(ClientError) as info:
        unchecked(rk).create_project_version(ProjectArn=made["project"], **kwargs)
    assert code(info) == error


def test_training_needs_a_test_dataset(rk: Any, s3: Any) -> None:
    project = rk.create_project(ProjectName="trainonly")["ProjectArn"]
    wait_dataset(rk, rk.create_dataset(ProjectArn=project, DatasetType="TRAIN")["DatasetArn"])
    with pytest.raises(ClientError) as info:
        rk.create_project_version(ProjectArn=project, VersionName="v1", OutputConfig={"S3Bucket": BUCKET})
    assert code(info) == "InvalidParameterException"
    assert "TEST" in info.value.response["Error"]["Message"]


def test_training_with_one_label_fails_with_a_reason(rk: Any, s3: Any) -> None:
    project = rk.create_project(ProjectName="onelabel")["ProjectArn"]
    for dataset_type, prefix in (("TRAIN", "one/train"), ("TEST", "one/test")):
        arn = rk.create_dataset(ProjectArn=project, DatasetType=dataset_type)["DatasetArn"]
        wait_dataset(rk, arn)
        lines = upload_colour_set(s3, prefix, 3, ("red",))
        rk.update_dataset_entries(DatasetArn=arn, Changes={"GroundTruth": "\n".join(lines).encode()})
        wait_dataset(rk, arn)
    description = train_version(rk, project)
    assert description["Status"] == "TRAINING_FAILED"
    assert "at least 2 labels" in description["StatusMessage"]
    assert "EvaluationResult" not in description
    assert "BillableTrainingTimeInSeconds" not in description


def test_training_skips_unreadable_images(rk: Any, s3: Any) -> None:
    made = make_project_with_datasets(rk, s3, "holes", per_label=4)
    missing = classification_line(f"s3://{BUCKET}/holes/missing.png", "red")
    s3.put_object(Bucket=BUCKET, Key="holes/text.png", Body=b"not an image at all")
    text = classification_line(f"s3://{BUCKET}/holes/text.png", "blue")
    rk.update_dataset_entries(
        DatasetArn=made["train"], Changes={"GroundTruth": f"{missing}\n{text}".encode()}
    )
    wait_dataset(rk, made["train"])
    description = train_version(rk, made["project"])
    assert description["Status"] == "TRAINING_COMPLETED"
    # The manifest summary in the documented format (Developer Guide, "Understanding the manifest
    # summary"): statistics per dataset, errors spanning both
    key = description["ManifestSummary"]["S3Object"]["Name"]
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert set(summary) == {"statistics", "errors"} and summary["errors"] == []
    training = summary["statistics"]["training"]
    assert set(training) == {
        "use_case",
        "total_json_lines",
        "valid_json_lines",
        "invalid_json_lines",
        "ignored_json_lines",
        "error_json_line_indices",
        "errors",
    }
    assert training["use_case"] == "IMAGE_LEVEL_LABELS"
    assert training["invalid_json_lines"] == 2
    assert training["valid_json_lines"] == training["total_json_lines"] - 2
    assert summary["statistics"]["testing"]["invalid_json_lines"] == 0
    # And the training manifest with validation carries those two lines' errors, at their indices
    (asset,) = description["TrainingDataResult"]["Validation"]["Assets"]
    obj = asset["GroundTruthManifest"]["S3Object"]
    lines = [json.loads(t) for t in s3.get_object(Bucket=BUCKET, Key=obj["Name"])["Body"].read().splitlines()]
    flagged = {lines[i]["source-ref"].rsplit("/", 1)[1] for i in training["error_json_line_indices"]}
    assert flagged == {"missing.png", "text.png"}
    assert all(
        lines[i]["errors"][0]["code"].startswith("ERROR_") for i in training["error_json_line_indices"]
    )
    assert description["TestingDataResult"]["Validation"]["Assets"]


def test_too_many_invalid_lines_fail_the_training_with_validation_results(rk: Any, s3: Any) -> None:
    # Given a TRAIN dataset where 4 of 8 labeled lines point at images that cannot be read
    made = make_project_with_datasets(rk, s3, "badlines", per_label=2)
    bad = [classification_line(f"s3://{BUCKET}/badlines/gone{i}.png", "red") for i in range(4)]
    rk.update_dataset_entries(DatasetArn=made["train"], Changes={"GroundTruth": "\n".join(bad).encode()})
    wait_dataset(rk, made["train"])
    # When it trains
    description = train_version(rk, made["project"])
    # Then the training fails with the terminal manifest content error, and the validation results
    # are there to read (Developer Guide, "Understanding the manifest summary")
    assert description["Status"] == "TRAINING_FAILED"
    assert "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST" in description["StatusMessage"]
    key = description["ManifestSummary"]["S3Object"]["Name"]
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    training = summary["statistics"]["training"]
    assert training["errors"] == [
        {
            "code": "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST",
            "message": "The manifest file contains too many invalid rows.",
        }
    ]
    assert training["invalid_json_lines"] == 4 and training["valid_json_lines"] == 4
    assert summary["statistics"]["testing"]["invalid_json_lines"] == 0
    (asset,) = description["TrainingDataResult"]["Validation"]["Assets"]
    assert asset["GroundTruthManifest"]["S3Object"]["Name"].endswith("training_manifest_with_validation.json")
    assert "EvaluationResult" not in description


def test_training_from_manifests_on_a_project_without_datasets(rk: Any, s3: Any) -> None:
    # Given manifests in S3 and a project without datasets
    lines = upload_colour_set(s3, "nodatasets", 6)
    s3.put_object(Bucket=BUCKET, Key="m/train.manifest", Body="\n".join(lines).encode())
    project = rk.create_project(ProjectName="manifests")["ProjectArn"]
    asset = {"GroundTruthManifest": {"S3Object": {"Bucket": BUCKET, "Name": "m/train.manifest"}}}
    # When
    rk.create_project_version(
        ProjectArn=project,
        VersionName="v1",
        OutputConfig={"S3Bucket": BUCKET, "S3KeyPrefix": "out/"},
        TrainingData={"Assets": [asset]},
        TestingData={"AutoCreate": True},
    )
    description = wait_version(rk, project, "v1", ("TRAINING_IN_PROGRESS",))
    # Then
    assert description["Status"] == "TRAINING_COMPLETED", description["StatusMessage"]
    assert description["TrainingDataResult"]["Input"] == {"Assets": [asset]}
    assert description["TestingDataResult"]["Input"] == {"AutoCreate": True}
    with pytest.raises(ClientError) as info:
        rk.create_project_version(ProjectArn=project, VersionName="v2", OutputConfig={"S3Bucket": BUCKET})
    assert code(info) == "InvalidParameterException"


def test_start_stop_and_delete(rk: Any, s3: Any) -> None:
    made = make_project_with_datasets(rk, s3, "lifecycle", per_label=4)
    trained = train_version(rk, made["project"])
    arn = trained["ProjectVersionArn"]
    # Max below Min is refused
    with pytest.raises(ClientError) as info:
        rk.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=2, MaxInferenceUnits=1)
    assert code(info) == "InvalidParameterException"
    with pytest.raises(ClientError) as info:
        unchecked(rk).start_project_version(ProjectVersionArn=arn, MinInferenceUnits=0)
    assert code(info) == "ValidationException"
    # When started
    assert (
        rk.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1, MaxInferenceUnits=3)["Status"]
        == "STARTING"
    )
    running = wait_version(rk, made["project"], "v1", ("STARTING",))
    assert running["Status"] == "RUNNING"
    assert (running["MinInferenceUnits"], running["MaxInferenceUnits"]) == (1, 3)
    # A running model can be neither started again nor deleted
    with pytest.raises(ClientError) as info:
        rk.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
    assert code(info) == "ResourceInUseException"
    with pytest.raises(ClientError) as info:
        rk.delete_project_version(ProjectVersionArn=arn)
    assert code(info) == "ResourceInUseException"
    with pytest.raises(ClientError) as info:
        rk.delete_project(ProjectArn=made["project"])
    assert code(info) == "ResourceInUseException"
    # When stopped
    assert rk.stop_project_version(ProjectVersionArn=arn)["Status"] == "STOPPING"
    assert wait_version(rk, made["project"], "v1", ("STOPPING",))["Status"] == "STOPPED"
    with pytest.raises(ClientError) as info:
        rk.stop_project_version(ProjectVersionArn=arn)
    assert code(info) == "ResourceInUseException"
    # When deleted
    assert rk.delete_project_version(ProjectVersionArn=arn)["Status"] == "DELETING"
    import time

    deadline = time.monotonic() + 10
    while rk.describe_project_versions(ProjectArn=made["project"])["ProjectVersionDescriptions"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with pytest.raises(ClientError) as info:
        rk.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
    assert code(info) == "ResourceNotFoundException"


def test_cannot_delete_a_version_in_training(patient: Any, s3: Any) -> None:
    made = make_project_with_datasets(patient, s3, "slowtrain", per_label=2)
    arn = patient.create_project_version(
        ProjectArn=made["project"], VersionName="v1", OutputConfig={"S3Bucket": BUCKET}
    )["ProjectVersionArn"]
    with pytest.raises(ClientError) as info:
        patient.delete_project_version(ProjectVersionArn=arn)
    assert code(info) == "ResourceInUseException"
    with pytest.raises(ClientError) as info:
        patient.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
    assert code(info) == "ResourceInUseException"
    with pytest.raises(ClientError) as info:
        patient.delete_dataset(DatasetArn=made["train"])
    assert code(info) == "ResourceInUseException"


def test_unknown_version_is_not_found(rk: Any) -> None:
    ghost = "arn:aws:rekognition:us-east-1:123456789012:project/ghost/version/v1/1"
    for call in (
        lambda: rk.start_project_version(ProjectVersionArn=ghost, MinInferenceUnits=1),
        lambda: rk.stop_project_version(ProjectVersionArn=ghost),
        lambda: rk.delete_project_version(ProjectVersionArn=ghost),
        lambda: rk.detect_custom_labels(ProjectVersionArn=ghost, Image={"Bytes": b"x"}),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert code(info) == "ResourceNotFoundException"
