"""Routes an S3 object key to what ingestion does with it.

Layout (every key starts with a configured project name)::

    <project>/train/<label>/<file>                  an image labeled <label> in the TRAIN dataset
    <project>/test/<label>/<file>                   an image labeled <label> in the TEST dataset
    <project>/manifests/(train|test)/<name>.manifest  Ground Truth lines for that dataset

The label is the first folder below train/ or test/; deeper folders are allowed and ignored
(`digits/train/7/batch-3/a.png` is labeled "7").
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import unquote_plus

from lambdas.common.constants import (
    DATASET_TYPE_BY_FOLDER,
    MANIFEST_SUFFIX,
    MANIFESTS_FOLDER,
    TEST_FOLDER,
    TRAIN_FOLDER,
)
from lambdas.ingestion.validation import Rejected, check_label


class KeyRejected(Rejected):
    """The key cannot be ingested; the message says why and what to do."""


@dataclass(frozen=True)
class ImageKey:
    project: str
    dataset_type: str  # TRAIN | TEST
    label: str
    key: str


@dataclass(frozen=True)
class ManifestKey:
    project: str
    dataset_type: str
    key: str


@dataclass(frozen=True)
class IgnoredKey:
    """Not an error: folder placeholders ("a/b/") that consoles create."""

    key: str
    reason: str


Route = ImageKey | ManifestKey | IgnoredKey


def decode_key(raw_key: str) -> str:
    """S3 event keys are URL-encoded with '+' for a space; unicode arrives percent-encoded UTF-8."""
    return unquote_plus(raw_key, encoding="utf-8", errors="strict")


def route_key(key: str, projects: Collection[str]) -> Route:
    """Classifies an already decoded key. Raises KeyRejected with an actionable message."""
    if key.endswith("/"):
        return IgnoredKey(key, "folder placeholder")
    parts = key.split("/")
    project = parts[0]
    if project not in projects:
        known = ", ".join(sorted(projects)) or "none"
        raise KeyRejected(
            f"{key}: project {project!r} is not configured (configured: {known}); add it under "
            "context 'projects' in cdk.json and deploy, or move the file under a configured project"
        )
    if len(parts) < 2 or parts[1] not in (TRAIN_FOLDER, TEST_FOLDER, MANIFESTS_FOLDER):
        raise KeyRejected(
            f"{key}: expected {project}/train/<label>/<file>, {project}/test/<label>/<file> or "
            f"{project}/manifests/(train|test)/<name>{MANIFEST_SUFFIX}"
        )
    folder = parts[1]
    if folder == MANIFESTS_FOLDER:
        return _manifest_route(key, project, parts)
    if len(parts) < 4 or not parts[-1]:
        raise KeyRejected(
            f"{key}: images go one folder deeper, under the label: {project}/{folder}/<label>/<file>"
        )
    label = parts[2]
    try:
        check_label(label)
    except Rejected as bad:
        raise KeyRejected(
            f"{key}: the folder {label!r} names the label of the image, and {bad}. Rename the folder "
            f"(upload to {project}/{folder}/<label>/...) with a name of 1 to 256 characters, without "
            "tabs, line breaks or spaces at either end"
        ) from None
    return ImageKey(project=project, dataset_type=DATASET_TYPE_BY_FOLDER[folder], label=label, key=key)


def _manifest_route(key: str, project: str, parts: list[str]) -> ManifestKey:
    if len(parts) < 4 or parts[2] not in DATASET_TYPE_BY_FOLDER:
        raise KeyRejected(
            f"{key}: manifests go under {project}/{MANIFESTS_FOLDER}/train/ or "
            f"{project}/{MANIFESTS_FOLDER}/test/ to say which dataset they extend"
        )
    if not key.endswith(MANIFEST_SUFFIX):
        raise KeyRejected(f"{key}: a manifest's name must end with {MANIFEST_SUFFIX}; rename it")
    return ManifestKey(project=project, dataset_type=DATASET_TYPE_BY_FOLDER[parts[2]], key=key)


def source_ref(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def parse_source_ref(ref: str) -> tuple[str, str]:
    """Splits "s3://bucket/key" into (bucket, key); raises ValueError when it is not one."""
    if not ref.startswith("s3://"):
        raise ValueError(f"source-ref {ref!r} must start with s3://")
    bucket, _, key = ref[len("s3://") :].partition("/")
    if not bucket or not key:
        raise ValueError(f"source-ref {ref!r} must be s3://<bucket>/<key>")
    return bucket, key
