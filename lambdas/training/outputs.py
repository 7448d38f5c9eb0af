"""Reads what a training wrote to S3: the evaluation summary, tested manifests, validation results.

Locations come from DescribeProjectVersions: EvaluationResult.Summary.S3Object, ManifestSummary
.S3Object, and TrainingDataResult / TestingDataResult .Output / .Validation .Assets[]
.GroundTruthManifest.S3Object (each {"Bucket", "Name", optional "Version"}).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from lambdas.common import aws
from lambdas.training import diagnosis


def summary_location(description: dict[str, Any]) -> dict[str, Any] | None:
    return ((description.get("EvaluationResult") or {}).get("Summary") or {}).get("S3Object") or None


def manifest_summary_location(description: dict[str, Any]) -> dict[str, Any] | None:
    return (description.get("ManifestSummary") or {}).get("S3Object") or None


def asset_locations(description: dict[str, Any], result: str, part: str) -> list[dict[str, Any]]:
    """S3 objects of `result` (TrainingDataResult | TestingDataResult) `part` (Output | Validation)."""
    assets = ((description.get(result) or {}).get(part) or {}).get("Assets") or []
    return [
        asset["GroundTruthManifest"]["S3Object"]
        for asset in assets
        if (asset.get("GroundTruthManifest") or {}).get("S3Object")
    ]


class TrainingOutputs:
    client = aws.LazyClient("s3")

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    def _get(self, location: dict[str, Any]) -> Any:
        arguments = {"Bucket": location["Bucket"], "Key": location["Name"]}
        if location.get("Version"):
            arguments["VersionId"] = location["Version"]
        return self.client.get_object(**arguments)["Body"]

    def read_json(self, location: dict[str, Any]) -> dict[str, Any]:
        loaded = json.loads(self._get(location).read())
        if not isinstance(loaded, dict):
            raise ValueError(f"s3://{location['Bucket']}/{location['Name']} does not hold a JSON object")
        return loaded

    def lines(self, location: dict[str, Any]) -> Iterator[str]:
        """The lines of a manifest, streamed (manifests reach 1 GB)."""
        body = self._get(location)
        for raw in body.iter_lines():
            yield raw.decode("utf-8", errors="replace")


def explain_training_failure(
    description: dict[str, Any], outputs: TrainingOutputs | None = None
) -> diagnosis.ValidationReport:
    """The validation results of a failed training, when Rekognition wrote them; never raises for
    a file it cannot read (the failure is reported either way, the file named as unavailable)."""
    outputs = outputs or TrainingOutputs()
    report = diagnosis.ValidationReport()
    location = manifest_summary_location(description)
    sources: list[tuple[str, dict[str, Any]]] = [
        (name, where)
        for name, result in (("training", "TrainingDataResult"), ("testing", "TestingDataResult"))
        for where in asset_locations(description, result, "Validation")
    ]
    if location is not None:
        try:
            diagnosis.read_manifest_summary(outputs.read_json(location), report)
        except (ClientError, ValueError) as error:
            report.unavailable.append(f"s3://{location['Bucket']}/{location['Name']}: {error}")
    for name, where in sources:
        try:
            diagnosis.read_validation_manifest(name, outputs.lines(where), report)
        except ClientError as error:
            report.unavailable.append(f"s3://{where['Bucket']}/{where['Name']}: {error}")
    return report
