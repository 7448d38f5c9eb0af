"""Reads uploaded objects from S3: image headers by ranged GET, manifests as a line stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from lambdas.common import aws
from lambdas.common.constants import IMAGE_MAX_BYTES
from lambdas.ingestion.validation import (
    IMAGE_TAIL_BYTES,
    ImageInfo,
    NeedMoreBytes,
    Rejected,
    check_image_end,
    read_image_header,
)

FIRST_READ_BYTES = 64 * 1024  # PNG needs 24 bytes; JPEG headers with EXIF usually fit in 64 KB
_MISSING = frozenset({"NoSuchKey", "NoSuchVersion", "404"})


class ObjectGone(Rejected):
    """The object (or this version of it) was deleted before it could be read."""


class S3ObjectSource:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("s3")
        return self._client

    def read_image_info(self, bucket: str, key: str, version_id: str | None) -> ImageInfo:
        """Format and dimensions, reading only as many leading bytes as the header needs, then the
        last bytes (one more ranged read) to check that the file is complete."""
        wanted = FIRST_READ_BYTES
        while True:
            data = self._read_range(bucket, key, version_id, wanted)
            try:
                info = read_image_header(data)
            except NeedMoreBytes as more:
                if len(data) < wanted or more.needed > IMAGE_MAX_BYTES:
                    raise Rejected(
                        "the image file ends before its header does (truncated upload?); upload it again"
                    ) from None
                wanted = min(IMAGE_MAX_BYTES, max(more.needed, wanted * 4))
                continue
            tail = data if len(data) < wanted else self._read_tail(bucket, key, version_id, IMAGE_TAIL_BYTES)
            check_image_end(info.format, tail)
            return info

    def iter_lines(self, bucket: str, key: str, version_id: str | None) -> Iterator[bytes]:
        response = self._get(bucket, key, version_id)
        yield from response["Body"].iter_lines(keepends=False)

    def _read_range(self, bucket: str, key: str, version_id: str | None, length: int) -> bytes:
        response = self._get(bucket, key, version_id, Range=f"bytes=0-{length - 1}")
        return bytes(response["Body"].read())

    def _read_tail(self, bucket: str, key: str, version_id: str | None, length: int) -> bytes:
        response = self._get(bucket, key, version_id, Range=f"bytes=-{length}")
        return bytes(response["Body"].read())

    def _get(self, bucket: str, key: str, version_id: str | None, **extra: Any) -> Any:
        arguments: dict[str, Any] = {"Bucket": bucket, "Key": key, **extra}
        if version_id:
            arguments["VersionId"] = version_id
        try:
            return self.client.get_object(**arguments)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                raise ObjectGone("the object was deleted before it could be read; upload it again") from None
            if error.response.get("Error", {}).get("Code") == "InvalidRange":  # an empty object
                raise Rejected("the file is empty; upload the image again") from None
            raise
