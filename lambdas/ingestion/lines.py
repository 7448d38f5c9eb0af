"""Ground Truth JSON lines: built from a folder label, or read from an uploaded manifest."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from lambdas.common.constants import GROUND_TRUTH_LABEL_ATTRIBUTE
from lambdas.ingestion.validation import (
    IMAGE_CLASSIFICATION_TYPE,
    ManifestEntry,
    Rejected,
    parse_manifest_line,
)

# Rekognition reads creation-date as an ISO timestamp without zone ("2026-01-01T00:00:00").
_CREATION_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
JOB_NAME = "custom-labels-autopilot"


@dataclass(frozen=True)
class Line:
    """One dataset entry to send: its source-ref (the entry's identity) and the JSON text."""

    source_ref: str
    text: str

    @property
    def size(self) -> int:
        """Bytes this line adds to Changes.GroundTruth, its newline separator included."""
        return len(self.text.encode("utf-8")) + 1


def creation_date(event_time: str | datetime) -> str:
    """The S3 event time, so that a redelivered event yields a byte-identical line."""
    if isinstance(event_time, str):
        event_time = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
    return event_time.strftime(_CREATION_DATE_FORMAT)


def image_line(source_ref: str, label: str, event_time: str | datetime) -> Line:
    """An image-level classification line for an image uploaded under its label folder."""
    attribute = GROUND_TRUTH_LABEL_ATTRIBUTE
    body = {
        "source-ref": source_ref,
        attribute: 1,
        f"{attribute}-metadata": {
            "confidence": 1,
            "class-name": label,
            "human-annotated": "yes",
            "creation-date": creation_date(event_time),
            "type": IMAGE_CLASSIFICATION_TYPE,
            "job-name": JOB_NAME,
        },
    }
    return Line(source_ref, json.dumps(body, separators=(",", ":"), ensure_ascii=False))


@dataclass(frozen=True)
class LineRejection:
    line_number: int
    reason: str


@dataclass
class ManifestContent:
    entries: list[ManifestEntry] = field(default_factory=list)
    rejections: list[LineRejection] = field(default_factory=list)
    blank_lines: int = 0
    numbers: list[int] = field(default_factory=list)  # the line number of each entry

    @property
    def numbered(self) -> list[tuple[int, ManifestEntry]]:
        return list(zip(self.numbers, self.entries, strict=True))

    @property
    def lines(self) -> list[Line]:
        """Valid entries; when one source-ref appears twice, the later line wins."""
        latest = {entry.source_ref: Line(entry.source_ref, entry.line) for entry in self.entries}
        return list(latest.values())


def read_manifest(
    text_lines: Iterable[str | bytes],
    bucket: str,
    first_line: int = 1,
    parse: Callable[[str, str], ManifestEntry] = parse_manifest_line,
) -> ManifestContent:
    """Validates a manifest line by line with `parse` (Ground Truth lines by default); bad lines are
    reported (numbered from `first_line`), their neighbours kept."""
    content = ManifestContent()
    for number, raw in enumerate(text_lines, start=first_line):
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            content.rejections.append(LineRejection(number, "not UTF-8 text; save the manifest as UTF-8"))
            continue
        text = text.strip().lstrip("\ufeff")
        if not text:
            content.blank_lines += 1
            continue
        try:
            content.entries.append(parse(text, bucket))
            content.numbers.append(number)
        except Rejected as error:
            content.rejections.append(LineRejection(number, str(error)))
    return content
