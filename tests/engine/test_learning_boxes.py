"""Real object detection: scenes with red and blue squares, trained from bounding-box manifests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.engine.conftest import BUCKET, wait_dataset, wait_version
from tests.engine.imaging import detection_line, scene


def _upload(s3: Any, prefix: str, count: int, seed: int) -> list[str]:
    lines = []
    for i in range(count):
        objects = [["red"], ["blue"], ["red", "blue"]][i % 3]
        png, boxes = scene(seed + i, objects)
        key = f"{prefix}/{i}.png"
        s3.put_object(Bucket=BUCKET, Key=key, Body=png)
        lines.append(
            detection_line(f"s3://{BUCKET}/{key}", [(n, tuple(map(float, b))) for n, b in boxes], (128, 128))
        )
    return lines


@pytest.mark.slow
def test_detector_finds_boxes(rk: Any, s3: Any) -> None:
    # Given bounding-box datasets
    project = rk.create_project(ProjectName="squares")["ProjectArn"]
    for dataset_type, count, seed in (("TRAIN", 45, 0), ("TEST", 15, 10_000)):
        arn = rk.create_dataset(ProjectArn=project, DatasetType=dataset_type)["DatasetArn"]
        wait_dataset(rk, arn)
        lines = _upload(s3, f"squares/{dataset_type.lower()}", count, seed)
        rk.update_dataset_entries(DatasetArn=arn, Changes={"GroundTruth": "\n".join(lines).encode()})
        stats = wait_dataset(rk, arn)["DatasetStats"]
        assert stats["LabeledEntries"] == count
    labels = rk.list_dataset_labels(DatasetArn=arn)["DatasetLabelDescriptions"]
    assert {d["LabelName"]: d["LabelStats"]["BoundingBoxCount"] for d in labels} == {"blue": 10, "red": 10}
    # When trained and started
    rk.create_project_version(ProjectArn=project, VersionName="v1", OutputConfig={"S3Bucket": BUCKET})
    description = wait_version(rk, project, "v1", ("TRAINING_IN_PROGRESS",), timeout=300)
    assert description["Status"] == "TRAINING_COMPLETED", description["StatusMessage"]
    assert description["EvaluationResult"]["F1Score"] >= 0.8
    summary_key = description["EvaluationResult"]["Summary"]["S3Object"]["Name"]
    aggregated = json.loads(s3.get_object(Bucket=BUCKET, Key=summary_key)["Body"].read())[
        "AggregatedEvaluationResults"
    ]
    assert aggregated["AveragePrecision"] >= 0.8 and "ConfusionMatrix" not in aggregated
    # The testing snapshot: predicted boxes judged, in pixels, and every true box either found or missed
    testing = description["TestingDataResult"]["Output"]["Assets"][0]["GroundTruthManifest"]["S3Object"]
    lines = [
        json.loads(x) for x in s3.get_object(Bucket=BUCKET, Key=testing["Name"])["Body"].read().splitlines()
    ]
    assert len(lines) == 15
    found_or_missed = 0
    for line in lines:
        evaluation, meta = (
            line["rekognition-custom-labels-evaluation"],
            line["rekognition-custom-labels-evaluation-metadata"],
        )
        assert meta["type"] == "groundtruth/object-detection"
        assert len(evaluation["annotations"]) == len(meta["objects"])
        details = [o["rekognition-custom-labels-evaluation-details"] for o in meta["objects"]]
        found_or_missed += sum(d["is-true-positive"] or d["is-false-negative"] for d in details)
        for box in evaluation["annotations"]:
            assert (
                0 <= box["left"] <= 128 and 0 <= box["top"] <= 128 and meta["class-map"][str(box["class_id"])]
            )
    assert found_or_missed == sum(len(line["bounding-box"]["annotations"]) for line in lines)
    rk.start_project_version(ProjectVersionArn=description["ProjectVersionArn"], MinInferenceUnits=1)
    wait_version(rk, project, "v1", ("STARTING",))
    # Then a new scene's squares are found where they are
    png, boxes = scene(77_777, ["red", "blue"])
    found = rk.detect_custom_labels(ProjectVersionArn=description["ProjectVersionArn"], Image={"Bytes": png})[
        "CustomLabels"
    ]
    assert sorted(label["Name"] for label in found) == ["blue", "red"]
    for label in found:
        box = label["Geometry"]["BoundingBox"]
        truth = next(b for name, b in boxes if name == label["Name"])
        assert abs(box["Left"] * 128 - truth[0]) < 10 and abs(box["Top"] * 128 - truth[1]) < 10
        assert abs(box["Width"] * 128 - truth[2]) < 12
