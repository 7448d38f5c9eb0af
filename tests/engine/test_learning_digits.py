"""Real learning on real data: scikit-learn's bundled handwritten digits, rendered to 64 px PNGs.

Upload to moto S3, dataset via UpdateDatasetEntries, DistributeDatasetEntries, train, start,
detect every held-out (TEST) image. The model must reach F1 >= 0.9 (as reported by
DescribeProjectVersions) and the right top label for at least 90% of the held-out images.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sklearn.datasets import load_digits

from tests.engine.conftest import BUCKET, wait_dataset, wait_version
from tests.engine.imaging import classification_line, digit_png


@pytest.mark.slow
def test_digits_end_to_end(rk: Any, s3: Any) -> None:
    # Given 1,797 digit images in S3 and their manifest lines
    digits = load_digits()
    truth: dict[str, str] = {}

    def upload(index: int) -> str:
        key = f"digits/train/{digits.target[index]}/{index}.png"
        s3.put_object(Bucket=BUCKET, Key=key, Body=digit_png(digits.images[index]))
        truth[f"s3://{BUCKET}/{key}"] = str(digits.target[index])
        return classification_line(f"s3://{BUCKET}/{key}", str(digits.target[index]), attribute="digit")

    with ThreadPoolExecutor(max_workers=4) as pool:
        lines = list(pool.map(upload, range(len(digits.images))))
    project = rk.create_project(ProjectName="digits")["ProjectArn"]
    train = rk.create_dataset(ProjectArn=project, DatasetType="TRAIN")["DatasetArn"]
    test = rk.create_dataset(ProjectArn=project, DatasetType="TEST")["DatasetArn"]
    wait_dataset(rk, train)
    wait_dataset(rk, test)
    rk.update_dataset_entries(DatasetArn=train, Changes={"GroundTruth": "\n".join(lines).encode()})
    assert wait_dataset(rk, train)["DatasetStats"]["LabeledEntries"] == 1797
    rk.distribute_dataset_entries(Datasets=[{"Arn": train}, {"Arn": test}])
    wait_dataset(rk, train)
    held_out_stats = wait_dataset(rk, test)["DatasetStats"]
    assert held_out_stats["TotalLabels"] == 10
    held_out = [
        json.loads(line)["source-ref"]
        for page in rk.get_paginator("list_dataset_entries").paginate(DatasetArn=test)
        for line in page["DatasetEntries"]
    ]
    assert len(held_out) == held_out_stats["TotalEntries"]

    # When trained and started
    started = time.monotonic()
    rk.create_project_version(
        ProjectArn=project,
        VersionName="digits-1",
        OutputConfig={"S3Bucket": BUCKET, "S3KeyPrefix": "training-output"},
    )
    description = wait_version(rk, project, "digits-1", ("TRAINING_IN_PROGRESS",), timeout=300)
    training_seconds = time.monotonic() - started
    assert description["Status"] == "TRAINING_COMPLETED", description["StatusMessage"]
    arn = description["ProjectVersionArn"]
    rk.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
    assert wait_version(rk, project, "digits-1", ("STARTING",))["Status"] == "RUNNING"

    # Then
    f1 = description["EvaluationResult"]["F1Score"]
    correct = 0
    for uri in held_out:
        bucket, key = uri[len("s3://") :].split("/", 1)
        labels = rk.detect_custom_labels(
            ProjectVersionArn=arn,
            Image={"S3Object": {"Bucket": bucket, "Name": key}},
            MinConfidence=0,
            MaxResults=1,
        )["CustomLabels"]
        correct += bool(labels) and labels[0]["Name"] == truth[uri]
    accuracy = correct / len(held_out)
    print(
        f"\ndigits: {1797 - len(held_out)} training / {len(held_out)} test images, "
        f"training {training_seconds:.1f} s, "
        f"F1 {f1:.4f}, top-label accuracy {accuracy:.4f}"
    )
    assert f1 >= 0.9
    assert accuracy >= 0.9
