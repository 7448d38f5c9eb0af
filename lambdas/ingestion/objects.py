"""Reads uploaded objects from S3: image headers by ranged GET, manifests as a line stream.

A batch's image headers can be read ahead concurrently (`prefetch_image_infos`, a bounded thread
pool): each read is one small ranged GET, so a batch of 10 waits about one round trip instead of
ten. `read_image_info` then answers from what was read ahead, once per object.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
HEADER_READ_THREADS = 8  # concurrent ranged GETs while a batch (100 messages by default) is read ahead

ObjectId = tuple[str, str, str | None]  # bucket, key, version id


class ObjectGone(Rejected):
    """The object (or this version of it) was deleted before it could be read."""


class S3ObjectSource:
    def __init__(self, client: Any | None = None) -> None:
        self._client = client
        self._read_ahead: dict[ObjectId, ImageInfo | Rejected] = {}
        self._lock = threading.Lock()

    client = aws.LazyClient("s3")

    def prefetch_image_infos(self, objects: Iterable[ObjectId]) -> int:
        """Reads the headers of these images concurrently; returns how many were read ahead.

        Outcomes are kept for `read_image_info`: the header, or the rejection (deleted, empty,
        truncated). Anything else (throttling, a 5xx after the client's retries) is not kept, so
        the sequential read meets it again and it is handled there as before.
        """
        wanted = list(dict.fromkeys(objects))
        with self._lock:
            self._read_ahead.clear()  # one batch at a time; nothing carries over to the next
        if len(wanted) < 2:
            return 0
        _ = self.client  # one client, created before the threads share it
        with ThreadPoolExecutor(max_workers=min(HEADER_READ_THREADS, len(wanted))) as pool:
            outcomes = list(pool.map(self._outcome, wanted))
        with self._lock:
            for object_id, outcome in zip(wanted, outcomes, strict=True):
                if outcome is not None:
                    self._read_ahead[object_id] = outcome
            return len(self._read_ahead)

    def _outcome(self, object_id: ObjectId) -> ImageInfo | Rejected | None:
        try:
            return self._read_header(*object_id)
        except Rejected as rejected:
            return rejected
        except Exception:  # left to the sequential read, which raises it where it is handled
            return None

    def read_image_info(self, bucket: str, key: str, version_id: str | None) -> ImageInfo:
        """Format and dimensions, reading only as many leading bytes as the header needs, then the
        last bytes (one more ranged read) to check that the file is complete."""
        with self._lock:
            outcome = self._read_ahead.pop((bucket, key, version_id), None)
        if isinstance(outcome, Rejected):
            raise outcome
        if outcome is not None:
            return outcome
        return self._read_header(bucket, key, version_id)

    def _read_header(self, bucket: str, key: str, version_id: str | None) -> ImageInfo:
        """The leading bytes up to the end of the header, then the last bytes (one more ranged
        read) to check that the file is complete."""
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
