"""The Rekognition calls the training Lambdas make (everything else is called by the state machine).

Every List/Describe call pages with MaxResults 100 and follows NextToken up to a bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lambdas.common import aws
from lambdas.common.constants import (
    FEATURE_CONTENT_MODERATION,
    FEATURE_CUSTOM_LABELS,
    REKOGNITION_MAX_RESULTS,
)

MAX_PAGES = 100  # 10,000 labels or versions: far beyond the service limits of one project


@dataclass(frozen=True)
class DatasetInfo:
    dataset_type: str  # TRAIN | TEST
    arn: str
    status: str
    status_message: str = ""
    labeled_entries: int = 0
    total_entries: int = 0
    total_labels: int = 0
    error_entries: int = 0


@dataclass(frozen=True)
class ProjectInfo:
    name: str
    arn: str
    status: str
    feature: str
    datasets: dict[str, str]  # dataset type -> ARN


@dataclass(frozen=True)
class LabelStats:
    name: str
    entries: int
    bounding_boxes: int


@dataclass(frozen=True)
class VersionInfo:
    arn: str
    name: str
    status: str
    created_epoch: float
    status_message: str = ""
    f1_score: float | None = None


def version_name_from_arn(arn: str) -> str:
    """arn:aws:rekognition:REGION:ACCOUNT:project/NAME/version/VERSION/1234567890123 -> VERSION."""
    parts = arn.split("/")
    if len(parts) >= 4 and parts[-3] == "version":
        return parts[-2]
    raise ValueError(f"{arn!r} is not a project version ARN")


def _epoch(value: Any) -> float:
    """Seconds since the epoch from a datetime (boto3), a number or an ISO-8601 string (Step Functions)."""
    if value is None or value == "":
        return 0.0
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value)


def _pages(**arguments: Any) -> dict[str, Any]:
    """Arguments of a paginated call: MaxResults 100, MAX_PAGES pages at the most."""
    return {**arguments, "MaxResults": REKOGNITION_MAX_RESULTS, "max_pages": MAX_PAGES}


def version_info(raw: dict[str, Any]) -> VersionInfo:
    arn = raw["ProjectVersionArn"]
    f1 = (raw.get("EvaluationResult") or {}).get("F1Score")
    return VersionInfo(
        arn=arn,
        name=version_name_from_arn(arn),
        status=raw.get("Status", ""),
        created_epoch=_epoch(raw.get("CreationTimestamp")),
        status_message=raw.get("StatusMessage") or "",
        f1_score=float(f1) if f1 is not None else None,
    )


class TrainingRekognition:
    client = aws.LazyClient("rekognition")

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    def describe_project(self, name: str) -> ProjectInfo | None:
        # Without Features, only CUSTOM_LABELS projects are listed.
        response = self.client.describe_projects(
            ProjectNames=[name],
            Features=[FEATURE_CUSTOM_LABELS, FEATURE_CONTENT_MODERATION],
            MaxResults=REKOGNITION_MAX_RESULTS,
        )
        for project in response.get("ProjectDescriptions", []):
            arn = project["ProjectArn"]
            if arn.split("/")[1] != name:
                continue
            datasets = {d["DatasetType"]: d["DatasetArn"] for d in project.get("Datasets", [])}
            return ProjectInfo(
                name=name,
                arn=arn,
                status=project.get("Status", ""),
                feature=project.get("Feature", "CUSTOM_LABELS"),
                datasets=datasets,
            )
        return None

    def describe_dataset(self, dataset_type: str, arn: str) -> DatasetInfo:
        description = self.client.describe_dataset(DatasetArn=arn)["DatasetDescription"]
        stats = description.get("DatasetStats") or {}
        return DatasetInfo(
            dataset_type=dataset_type,
            arn=arn,
            status=description.get("Status", ""),
            status_message=description.get("StatusMessage") or "",
            labeled_entries=int(stats.get("LabeledEntries") or 0),
            total_entries=int(stats.get("TotalEntries") or 0),
            total_labels=int(stats.get("TotalLabels") or 0),
            error_entries=int(stats.get("ErrorEntries") or 0),
        )

    def list_labels(self, dataset_arn: str) -> list[LabelStats]:
        return [
            LabelStats(
                name=label["LabelName"],
                entries=int((label.get("LabelStats") or {}).get("EntryCount") or 0),
                bounding_boxes=int((label.get("LabelStats") or {}).get("BoundingBoxCount") or 0),
            )
            for label in aws.iter_pages(
                self.client.list_dataset_labels, "DatasetLabelDescriptions", **_pages(DatasetArn=dataset_arn)
            )
        ]

    def list_versions(self, project_arn: str) -> list[VersionInfo]:
        return [
            version_info(raw)
            for raw in aws.iter_pages(
                self.client.describe_project_versions,
                "ProjectVersionDescriptions",
                **_pages(ProjectArn=project_arn),
            )
        ]

    def describe_version(self, project_arn: str, version_name: str) -> VersionInfo | None:
        response = self.client.describe_project_versions(ProjectArn=project_arn, VersionNames=[version_name])
        for raw in response.get("ProjectVersionDescriptions", []):
            info = version_info(raw)
            if info.name == version_name:
                return info
        return None

    def describe_version_raw(self, project_arn: str, version_name: str) -> dict[str, Any] | None:
        """The whole ProjectVersionDescription of one version (None when it no longer exists)."""
        response = self.client.describe_project_versions(ProjectArn=project_arn, VersionNames=[version_name])
        for raw in response.get("ProjectVersionDescriptions", []):
            if version_name_from_arn(raw["ProjectVersionArn"]) == version_name:
                return dict(raw)
        return None

    def delete_version(self, version_arn: str) -> str:
        return str(self.client.delete_project_version(ProjectVersionArn=version_arn).get("Status", ""))

    def stop_version(self, version_arn: str) -> str:
        return str(self.client.stop_project_version(ProjectVersionArn=version_arn).get("Status", ""))
