"""The manifests of CONTENT_MODERATION projects, kept as S3 objects in the data bucket.

`<project>/adapter-manifests/train.manifest` and `.../test.manifest` hold one adapter line per
image (source-ref). Ingestion's flush (under the dataset's lease, so one writer at a time) merges
the staged lines into the current object and writes it back as a new version of the object:

- the write is conditional (`If-Match` on the ETag read, `If-None-Match: *` for the first one), so
  a concurrent writer (a lease that expired under a slow flush, a person editing the object) can
  never make a line disappear: the write is refused, the object is read again and merged again;
- the bucket is versioned, so every earlier manifest stays readable, and training names the
  version it read (TrainingData.Assets[].GroundTruthManifest.S3Object.Version);
- the line count is kept in the object's metadata (`x-amz-meta-entries`), which the trainer reads
  with one HeadObject.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lambdas.common import aws
from lambdas.common.constants import ADAPTER_MANIFEST_ENTRIES_METADATA
from lambdas.ingestion.lines import Line

CONFLICT_ATTEMPTS = 5  # reads and merges after a refused conditional write, then a later flush


class ManifestConflict(Exception):
    """The manifest kept changing under us; the staged lines stay staged for the next flush."""


@dataclass(frozen=True)
class ManifestWrite:
    key: str
    version_id: str | None
    entries: int  # lines in the manifest after the write
    added: int  # source-refs new to the manifest
    updated: int  # source-refs whose line was replaced


def merge_lines(current: Sequence[Line], fresh: Sequence[Line]) -> tuple[list[Line], int, int]:
    """The manifest with `fresh` applied: a source-ref already present keeps its place and takes the
    new line, new ones go at the end. Returns (lines, added, updated)."""
    merged = {line.source_ref: line for line in current}
    added = updated = 0
    for line in fresh:
        if line.source_ref in merged:
            updated += 1
        else:
            added += 1
        merged[line.source_ref] = line
    return list(merged.values()), added, updated


def parse_manifest(body: bytes) -> list[Line]:
    """Our own manifest object: one compact JSON line per source-ref."""
    lines = []
    for raw in body.decode("utf-8").splitlines():
        text = raw.strip()
        if text:
            lines.append(Line(str(json.loads(text)["source-ref"]), text))
    return lines


class AdapterManifests:
    """Reads and conditionally writes the manifest objects of adapter projects."""

    client = aws.LazyClient("s3")

    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self._client = client

    def read(self, key: str) -> tuple[list[Line], str | None]:
        """The manifest's lines and ETag; ([], None) when it does not exist yet."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return [], None
            raise
        return parse_manifest(response["Body"].read()), str(response["ETag"])

    def apply(self, key: str, fresh: Sequence[Line]) -> ManifestWrite:
        """Merges `fresh` into the manifest and writes a new version; never loses a concurrent line."""
        for _ in range(CONFLICT_ATTEMPTS):
            current, etag = self.read(key)
            lines, added, updated = merge_lines(current, fresh)
            body = "".join(f"{line.text}\n" for line in lines).encode("utf-8")
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                response = self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentType="application/x-ndjson",
                    Metadata={ADAPTER_MANIFEST_ENTRIES_METADATA: str(len(lines))},
                    **condition,
                )
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                    continue  # written meanwhile: read it again and merge again
                raise
            return ManifestWrite(key, response.get("VersionId"), len(lines), added, updated)
        raise ManifestConflict(f"s3://{self.bucket}/{key} kept changing during {CONFLICT_ATTEMPTS} merges")
