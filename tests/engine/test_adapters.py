"""Custom moderation adapters: trained from manifests in the adapter format (TrainingData and
TestingData or AutoCreate), evaluated, used by DetectModerationLabels, with simulated human review."""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from autopilot.engine.adapters import SAFE_CLASS, auto_split, parse_adapter_line
from autopilot.engine.manifests import ManifestLineError
from autopilot.engine.testing import RunningEngine, running_engine
from tests.engine.conftest import BUCKET, FAST, wait_version
from tests.engine.imaging import colour_image
from tests.engine.shapes import ShapeRecorder


def adapter_line(uri: str, *names: str) -> str:
    return json.dumps(
        {
            "source-ref": uri,
            "content-moderation-groundtruth": {"ModerationLabels": [{"Name": n} for n in names]},
        }
    )


def upload_adapter_manifest(
    s3: Any, key: str, per_colour: int, labels: dict[str, str | None]
) -> dict[str, Any]:
    """Colour images labelled per colour (None: no unsafe content) and their adapter manifest."""
    lines = []
    for colour, label in labels.items():
        for i in range(per_colour):
            image_key = f"{key}-images/{colour}/{i}.png"
            s3.put_object(
                Bucket=BUCKET, Key=image_key, Body=colour_image(colour, zlib.crc32(image_key.encode()))
            )
            names = (label,) if label else ()
            lines.append(adapter_line(f"s3://{BUCKET}/{image_key}", *names))
    s3.put_object(Bucket=BUCKET, Key=key, Body="\n".join(lines).encode())
    return {"GroundTruthManifest": {"S3Object": {"Bucket": BUCKET, "Name": key}}}


def read_lines(s3: Any, s3_object: dict[str, str]) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=s3_object["Bucket"], Key=s3_object["Name"])["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def moderation_project(rk: Any, name: str) -> str:
    return str(
        rk.create_project(ProjectName=name, Feature="CONTENT_MODERATION", AutoUpdate="DISABLED")["ProjectArn"]
    )


def test_an_adapter_trains_from_an_adapter_manifest_with_an_automatic_test_split(rk: Any, s3: Any) -> None:
    # Given a training manifest in the adapter format: two unsafe labels and safe images
    labels = {"red": "Alcohol", "blue": "Gambling", "green": None}
    asset = upload_adapter_manifest(s3, "adapters/train.manifest", 6, labels)
    project = moderation_project(rk, "adapter-auto")
    # When an adapter is trained with TestingData.AutoCreate
    rk.create_project_version(
        ProjectArn=project,
        VersionName="a1",
        OutputConfig={"S3Bucket": BUCKET, "S3KeyPrefix": "adapter-out"},
        TrainingData={"Assets": [asset]},
        TestingData={"AutoCreate": True},
        FeatureConfig={"ContentModeration": {"ConfidenceThreshold": 70.0}},
    )
    adapter = wait_version(rk, project, "a1", ("TRAINING_IN_PROGRESS",))
    # Then it completes and reports its input, its split and its evaluation
    assert adapter["Status"] == "TRAINING_COMPLETED", adapter["StatusMessage"]
    assert adapter["Feature"] == "CONTENT_MODERATION"
    assert adapter["FeatureConfig"] == {"ContentModeration": {"ConfidenceThreshold": 70.0}}
    assert adapter["BaseModelVersion"] == "7.0"
    assert adapter["TrainingDataResult"]["Input"] == {"Assets": [asset]}
    assert adapter["TestingDataResult"]["Input"] == {"AutoCreate": True}
    assert adapter["TestingDataResult"]["Output"]["AutoCreate"] is True
    assert 0.0 <= adapter["EvaluationResult"]["F1Score"] <= 1.0
    training = read_lines(
        s3, adapter["TrainingDataResult"]["Output"]["Assets"][0]["GroundTruthManifest"]["S3Object"]
    )
    testing = read_lines(
        s3, adapter["TestingDataResult"]["Output"]["Assets"][0]["GroundTruthManifest"]["S3Object"]
    )
    # 20% of each label's 6 images (one each) form the test set; nothing is lost or repeated
    assert (len(training), len(testing)) == (15, 3)
    assert {line["source-ref"] for line in training}.isdisjoint(line["source-ref"] for line in testing)
    assert sorted(
        tuple(label["Name"] for label in line["content-moderation-groundtruth"]["ModerationLabels"])
        for line in testing
    ) == [(), ("Alcohol",), ("Gambling",)]
    where = adapter["EvaluationResult"]["Summary"]["S3Object"]
    summary = json.loads(s3.get_object(Bucket=where["Bucket"], Key=where["Name"])["Body"].read())
    assert sorted(summary["EvaluationDetails"]["Labels"]) == ["Alcohol", "Gambling"]
    # And DetectModerationLabels answers with the adapter's labels and names the adapter
    arn = adapter["ProjectVersionArn"]
    red = rk.detect_moderation_labels(Image={"Bytes": colour_image("red", 991)}, ProjectVersion=arn)
    assert red["ModerationLabels"][0]["Name"] == "Alcohol"
    assert (red["ModerationLabels"][0]["ParentName"], red["ModerationLabels"][0]["TaxonomyLevel"]) == ("", 1)
    assert red["ProjectVersion"] == arn
    assert "HumanLoopActivationOutput" not in red
    green = rk.detect_moderation_labels(
        Image={"Bytes": colour_image("green", 992)}, ProjectVersion=arn, MinConfidence=0
    )
    assert {label["Name"] for label in green["ModerationLabels"]} <= {"Alcohol", "Gambling"}
    # An adapter is never started
    assert rk.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"][0]["Status"] == (
        "TRAINING_COMPLETED"
    )


@pytest.fixture
def adapter(running: RunningEngine, rk: Any, s3: Any) -> Iterator[dict[str, Any]]:
    """An adapter trained on second- and third-level labels with a given testing manifest."""
    labels = {"red": "Middle Finger", "blue": "Smoking", "green": None}
    training = upload_adapter_manifest(s3, "levels/train.manifest", 5, labels)
    testing = upload_adapter_manifest(s3, "levels/test.manifest", 2, labels)
    project = moderation_project(rk, "adapter-levels")
    rk.create_project_version(
        ProjectArn=project,
        VersionName="a1",
        OutputConfig={"S3Bucket": BUCKET},
        TrainingData={"Assets": [training]},
        TestingData={"Assets": [testing]},
    )
    description = wait_version(rk, project, "a1", ("TRAINING_IN_PROGRESS",))
    assert description["Status"] == "TRAINING_COMPLETED", description["StatusMessage"]
    assert description["TestingDataResult"]["Input"] == {"Assets": [testing]}
    assert "AutoCreate" not in description["TestingDataResult"]["Output"]
    yield {"arn": description["ProjectVersionArn"], "running": running}


def test_labels_below_the_top_level_carry_their_parent_and_level(rk: Any, adapter: dict[str, Any]) -> None:
    red = rk.detect_moderation_labels(Image={"Bytes": colour_image("red", 5)}, ProjectVersion=adapter["arn"])
    blue = rk.detect_moderation_labels(
        Image={"Bytes": colour_image("blue", 6)}, ProjectVersion=adapter["arn"]
    )
    # Developer Guide, moderation-api: Middle Finger (L2) under Rude Gestures; Smoking (L3) under
    # Drugs & Tobacco Paraphernalia & Use
    assert {k: red["ModerationLabels"][0][k] for k in ("Name", "ParentName", "TaxonomyLevel")} == {
        "Name": "Middle Finger",
        "ParentName": "Rude Gestures",
        "TaxonomyLevel": 2,
    }
    assert {k: blue["ModerationLabels"][0][k] for k in ("Name", "ParentName", "TaxonomyLevel")} == {
        "Name": "Smoking",
        "ParentName": "Drugs & Tobacco Paraphernalia & Use",
        "TaxonomyLevel": 3,
    }


def test_human_review_is_simulated_from_the_loop_name_and_a_confidence_band(
    rk: Any, adapter: dict[str, Any]
) -> None:
    engine = adapter["running"].server.engine
    loop = {
        "HumanLoopName": "image-0001",
        "FlowDefinitionArn": "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/review",
        "DataAttributes": {"ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation"]},
    }
    image = {"Bytes": colour_image("red", 77)}
    # Given a band that holds every confidence: the loop starts
    engine.config = dataclasses.replace(engine.config, human_loop_band=(0.0, 101.0))
    started = rk.detect_moderation_labels(Image=image, ProjectVersion=adapter["arn"], HumanLoopConfig=loop)
    output = started["HumanLoopActivationOutput"]
    assert output["HumanLoopArn"] == "arn:aws:sagemaker:us-east-1:123456789012:human-loop/image-0001"
    assert output["HumanLoopActivationReasons"] == ["ConditionsEvaluation"]
    assert (
        json.loads(output["HumanLoopActivationConditionsEvaluationResults"])["Conditions"][0][
            "EvaluationResult"
        ]
        is True
    )
    assert started["ProjectVersion"] == adapter["arn"]
    # Given an empty band: no loop, the evaluation says why
    engine.config = dataclasses.replace(engine.config, human_loop_band=(0.0, 0.0))
    quiet = rk.detect_moderation_labels(Image=image, ProjectVersion=adapter["arn"], HumanLoopConfig=loop)
    output = quiet["HumanLoopActivationOutput"]
    assert "HumanLoopArn" not in output and "HumanLoopActivationReasons" not in output
    assert (
        json.loads(output["HumanLoopActivationConditionsEvaluationResults"])["Conditions"][0][
            "EvaluationResult"
        ]
        is False
    )
    assert quiet["ModerationLabels"] == started["ModerationLabels"]


def test_an_expired_adapter_fault_makes_the_base_model_answer_without_project_version(
    rk: Any, adapter: dict[str, Any]
) -> None:
    running = adapter["running"]
    image = {"Bytes": colour_image("red", 78)}
    # Given the next call finds the adapter expired (another project's fault does not apply)
    running.faults.expire_adapter(project="another-project")
    running.faults.expire_adapter(project="adapter-levels")
    expired = rk.detect_moderation_labels(Image=image, ProjectVersion=adapter["arn"])
    # Then the answer leaves ProjectVersion out (the base model answered) and finds nothing offline
    assert "ProjectVersion" not in expired
    assert expired["ModerationLabels"] == []
    assert expired["ModerationModelVersion"]
    # And the fault is spent: the adapter answers the next call
    again = rk.detect_moderation_labels(Image=image, ProjectVersion=adapter["arn"])
    assert again["ProjectVersion"] == adapter["arn"]
    assert again["ModerationLabels"][0]["Name"] == "Middle Finger"
    assert [fault["project"] for fault in running.faults.list()] == ["another-project"]


def test_a_label_outside_the_taxonomy_fails_training_with_the_valid_names(rk: Any, s3: Any) -> None:
    asset = upload_adapter_manifest(s3, "bad/train.manifest", 3, {"red": "Cats", "blue": "Alcohol"})
    project = moderation_project(rk, "adapter-bad")
    rk.create_project_version(
        ProjectArn=project,
        VersionName="a1",
        OutputConfig={"S3Bucket": BUCKET},
        TrainingData={"Assets": [asset]},
        TestingData={"AutoCreate": True},
    )
    failed = wait_version(rk, project, "a1", ("TRAINING_IN_PROGRESS",))
    assert failed["Status"] == "TRAINING_FAILED"
    assert "'Cats' is not a moderation label" in failed["StatusMessage"]
    assert "Rude Gestures" in failed["StatusMessage"] and "Alcohol" in failed["StatusMessage"]
    assert "EvaluationResult" not in failed


def test_a_manifest_of_another_format_fails_training(rk: Any, s3: Any) -> None:
    # Custom Labels classification lines have no content-moderation-groundtruth
    lines = [
        json.dumps(
            {"source-ref": f"s3://{BUCKET}/x/{i}.png", "label": 1, "label-metadata": {"class-name": "red"}}
        )
        for i in range(5)
    ]
    s3.put_object(Bucket=BUCKET, Key="cl/train.manifest", Body="\n".join(lines).encode())
    project = moderation_project(rk, "adapter-format")
    rk.create_project_version(
        ProjectArn=project,
        VersionName="a1",
        OutputConfig={"S3Bucket": BUCKET},
        TrainingData={
            "Assets": [{"GroundTruthManifest": {"S3Object": {"Bucket": BUCKET, "Name": "cl/train.manifest"}}}]
        },
        TestingData={"AutoCreate": True},
    )
    failed = wait_version(rk, project, "a1", ("TRAINING_IN_PROGRESS",))
    assert failed["Status"] == "TRAINING_FAILED"
    assert "content-moderation-groundtruth" in failed["StatusMessage"]


def test_an_adapter_project_without_manifests_is_told_the_adapter_format(rk: Any) -> None:
    project = moderation_project(rk, "adapter-empty")
    with pytest.raises(ClientError) as info:
        rk.create_project_version(
            ProjectArn=project,
            VersionName="a1",
            OutputConfig={"S3Bucket": BUCKET},
            TestingData={"AutoCreate": True},
        )
    assert code(info) == "InvalidParameterException"
    assert "content-moderation-groundtruth" in info.value.response["Error"]["Message"]


def test_dataset_operations_on_adapter_projects_can_be_refused(s3: Any) -> None:
    with running_engine(time_scale=FAST, adapter_datasets=False) as engine:
        rk = engine.client()
        recorder = ShapeRecorder(rk)
        project = moderation_project(rk, "adapter-strict")
        with pytest.raises(ClientError) as info:
            rk.create_dataset(ProjectArn=project, DatasetType="TRAIN")
        assert code(info) == "InvalidParameterException"
        assert "TrainingData" in info.value.response["Error"]["Message"]
        # Custom Labels projects keep their datasets
        labels = rk.create_project(ProjectName="labels")["ProjectArn"]
        assert rk.create_dataset(ProjectArn=labels, DatasetType="TRAIN")["DatasetArn"]
        assert recorder.found == []


def test_adapter_lines_parse_to_labels_or_the_safe_class() -> None:
    unsafe = parse_adapter_line(adapter_line("s3://b/1.jpg", "Rude Gestures", "Alcohol"))
    safe = parse_adapter_line(adapter_line("s3://b/2.jpg"))
    assert unsafe.image_labels == ["Rude Gestures", "Alcohol"]
    assert safe.image_labels == [SAFE_CLASS] and safe.labeled
    for broken in (
        "not json",
        json.dumps({"content-moderation-groundtruth": {"ModerationLabels": []}}),
        json.dumps({"source-ref": "s3://b/3.jpg"}),
        json.dumps(
            {"source-ref": "s3://b/3.jpg", "content-moderation-groundtruth": {"ModerationLabels": ["x"]}}
        ),
    ):
        with pytest.raises(ManifestLineError):
            parse_adapter_line(broken)


def test_the_automatic_split_keeps_every_label_set_on_both_sides() -> None:
    entries = [
        parse_adapter_line(adapter_line(f"s3://b/{name}/{i}.jpg", *names))
        for name, names, count in (("a", ("Alcohol",), 10), ("s", (), 5), ("g", ("Gambling",), 2))
        for i in range(count)
    ]
    training, testing = auto_split(entries, seed=7)
    assert len(testing) == 2 + 1 + 1  # 20% of 10, of 5, and one of the pair
    assert len(training) + len(testing) == len(entries)
    for labels in (["Alcohol"], [SAFE_CLASS], ["Gambling"]):
        assert any(e.image_labels == labels for e in training)
        assert any(e.image_labels == labels for e in testing)
    assert auto_split(entries, seed=7) == (training, testing)
