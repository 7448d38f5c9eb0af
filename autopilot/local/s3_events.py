"""S3 event notifications with the object fields AWS sends and moto leaves out.

AWS's object-created records carry `eTag`, `versionId` (versioned buckets only) and `sequencer`
(Amazon S3 User Guide, "Event message structure": a hexadecimal value that orders the events of
one key; compare two of them as strings after right-padding the shorter with zeros). moto's
records carry `eTag` only, so offline a corrected file re-uploaded under the same key looked like
a duplicate of the first upload. `install()` wraps moto's record builder once, process-wide, to add
`versionId` and a `sequencer` that grows with every event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()
_last = 0
_installed: list[Callable[..., Any]] = []


def next_sequencer() -> str:
    """An 18-digit uppercase hexadecimal value, strictly greater than every one before it."""
    global _last
    with _lock:
        _last = max(_last + 1, time.time_ns())
        return f"{_last:018X}"


def with_object_fields(record_body: dict[str, Any], bucket: Any, key: Any) -> dict[str, Any]:
    """Adds `versionId` (when the bucket is versioned), `sequencer` and `eTag` to each record."""
    versioned = bool(getattr(bucket, "is_versioned", False))
    for record in record_body.get("Records", []):
        obj = record.get("s3", {}).get("object")
        if obj is None:
            continue
        obj.setdefault("eTag", str(getattr(key, "etag", "")).replace('"', ""))
        version = getattr(key, "version_id", None)
        if versioned and version and version != "null":
            obj["versionId"] = version
        obj["sequencer"] = next_sequencer()
    return record_body


def install() -> None:
    """Makes moto's S3 notifications carry the fields above (idempotent)."""
    from moto.s3 import notifications

    with _lock:
        if _installed:
            return
        original = notifications._get_s3_event

        def build(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
            return with_object_fields(original(event_name, bucket, key, notification_id), bucket, key)

        notifications._get_s3_event = build  # type: ignore[assignment]
        _installed.append(original)
