"""Training of custom moderation adapters (CONTENT_MODERATION projects) from the manifests ingestion
keeps in S3 (`<project>/adapter-manifests/train.manifest` and `test.manifest`).

The trigger reads each manifest's current version and line count with one HeadObject; the training
workflow passes those versions as CreateProjectVersion TrainingData / TestingData assets, or
`TestingData.AutoCreate` when there is no test manifest (Rekognition Developer Guide,
"adapters-manual-annotation", "using-adapters-manifest-files").

Versions the workflow did not create (an AutoUpdate retraining by the service, or a version made
by hand) are reported once with a `version.discovered` lifecycle event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from lambdas.common import aws
from lambdas.common.constants import ADAPTER_MANIFEST_ENTRIES_METADATA, EVENT_VERSION_DISCOVERED
from lambdas.common.moderation import adapter_manifest_key
from lambdas.common.production import DatasetSnapshot
from lambdas.training import naming
from lambdas.training.rekognition import VersionInfo


@dataclass(frozen=True)
class ManifestInfo:
    dataset_type: str  # TRAIN | TEST
    bucket: str
    key: str
    version_id: str | None
    entries: int

    def s3_object(self) -> dict[str, str]:
        """GroundTruthManifest.S3Object: the version read now, so later uploads do not change it."""
        found = {"Bucket": self.bucket, "Name": self.key}
        if self.version_id and self.version_id != "null":
            found["Version"] = self.version_id
        return found


class ManifestReader(Protocol):
    def head(self, project: str, dataset_type: str) -> ManifestInfo | None: ...


class S3ManifestReader:
    """HeadObject of an adapter manifest: its version and the line count ingestion wrote."""

    client = aws.LazyClient("s3")

    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self._client = client

    def head(self, project: str, dataset_type: str) -> ManifestInfo | None:
        key = adapter_manifest_key(project, dataset_type)
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        metadata = response.get("Metadata") or {}
        return ManifestInfo(
            dataset_type=dataset_type,
            bucket=self.bucket,
            key=key,
            version_id=response.get("VersionId"),
            entries=int(metadata.get(ADAPTER_MANIFEST_ENTRIES_METADATA) or 0),
        )


def adapter_snapshot(train: ManifestInfo, test: ManifestInfo | None) -> DatasetSnapshot:
    """The manifests' line counts in the shape of a dataset snapshot (every adapter line is labeled:
    an empty label list says "no unsafe content")."""
    test_entries = test.entries if test else 0
    return DatasetSnapshot(
        train_labeled_entries=train.entries,
        test_labeled_entries=test_entries,
        train_total_entries=train.entries,
        test_total_entries=test_entries,
    )


def adapter_description(train: ManifestInfo, test: ManifestInfo | None) -> str:
    testing = f"test manifest {test.entries} images" if test else "test set split automatically (AutoCreate)"
    return naming.version_description(
        f"autopilot moderation adapter: train manifest {train.entries} images, {testing}"
    )


class SeenStore(Protocol):
    def mark_version_seen(self, project: str, version_name: str, *, status: str, now: datetime) -> bool: ...


class Publisher(Protocol):
    def publish(self, event_type: str, project: str, **detail: Any) -> dict[str, Any]: ...


def report_discovered_versions(
    project: str,
    versions: list[VersionInfo],
    *,
    store: SeenStore,
    publisher: Publisher,
    now: datetime,
) -> list[str]:
    """Publishes `version.discovered` once for each version the workflow did not create."""
    reported = []
    for version in versions:
        if naming.is_version_name_of(project, version.name):
            continue
        if not store.mark_version_seen(project, version.name, status=version.status, now=now):
            continue
        publisher.publish(
            EVENT_VERSION_DISCOVERED,
            project,
            version_arn=version.arn,
            version_name=version.name,
            status=version.status,
            f1_score=version.f1_score,
            reason="a version this project's training workflow did not create (an AutoUpdate retraining "
            "by Rekognition on a new base model version, or a version made by hand); it is not promoted "
            "automatically: compare it with `autopilot status` and promote it with `autopilot promote`",
        )
        reported.append(version.name)
    return reported
