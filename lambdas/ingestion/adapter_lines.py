"""Lines of custom moderation adapter manifests (CONTENT_MODERATION projects), without AWS.

Format (Rekognition Developer Guide, "Manifest file formats", using-adapters-manifest-files)::

    {"source-ref": "s3://bucket/key.jpg",
     "content-moderation-groundtruth": {"ModerationLabels": [{"Name": "Smoking"}]}}

An image without unsafe content has an empty `ModerationLabels` list. Label names come from the
moderation taxonomy (lambdas.common.moderation); a name outside it is rejected with the valid ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from lambdas.common.constants import ADAPTER_GROUNDTRUTH_ATTRIBUTE, DATASET_ENTRY_MAX_CHARS
from lambdas.common.moderation import LABEL_NAMES, is_moderation_label
from lambdas.ingestion.lines import Line, ManifestContent, read_manifest
from lambdas.ingestion.validation import ManifestEntry, Rejected, line_object


def valid_names(safe_folder: str) -> str:
    return f"{', '.join(LABEL_NAMES)} (or {safe_folder!r} for an image without unsafe content)"


def check_moderation_label(name: str, safe_folder: str) -> str:
    """A folder or manifest label of a moderation project: a taxonomy name, or the safe folder."""
    if name == safe_folder or is_moderation_label(name):
        return name
    raise Rejected(f"{name!r} is not a moderation label; valid names: {valid_names(safe_folder)}")


def adapter_line(source_ref: str, labels: Iterable[str]) -> Line:
    body = {
        "source-ref": source_ref,
        ADAPTER_GROUNDTRUTH_ATTRIBUTE: {"ModerationLabels": [{"Name": name} for name in labels]},
    }
    return Line(source_ref, json.dumps(body, separators=(",", ":"), ensure_ascii=False))


def image_adapter_line(source_ref: str, label: str, safe_folder: str) -> Line:
    """The line of an image uploaded under train/<label>/ or test/<label>/ (the safe folder: no label)."""
    return adapter_line(source_ref, [] if label == safe_folder else [label])


def parse_adapter_line(text: str, bucket: str) -> ManifestEntry:
    """Validates one adapter manifest line; the line is rewritten compactly with only its labels."""
    obj, ref = line_object(text, bucket)
    truth = obj.get(ADAPTER_GROUNDTRUTH_ATTRIBUTE)
    labels = truth.get("ModerationLabels") if isinstance(truth, dict) else None
    if not isinstance(labels, list) or not all(
        isinstance(item, dict) and isinstance(item.get("Name"), str) for item in labels
    ):
        raise Rejected(
            f'the line needs "{ADAPTER_GROUNDTRUTH_ATTRIBUTE}": '
            '{"ModerationLabels": [{"Name": "<label>"}]} '
            "(an empty list for an image without unsafe content); fix the line"
        )
    names = tuple(dict.fromkeys(item["Name"] for item in labels))
    unknown = [name for name in names if not is_moderation_label(name)]
    if unknown:
        raise Rejected(
            f"{', '.join(repr(name) for name in unknown)} is not a moderation label; valid names: "
            f"{', '.join(LABEL_NAMES)} (an empty ModerationLabels list for an image without unsafe content)"
        )
    line = adapter_line(ref, names)
    if len(line.text) > DATASET_ENTRY_MAX_CHARS:
        raise Rejected(f"the line has {len(line.text)} characters; at most {DATASET_ENTRY_MAX_CHARS}")
    return ManifestEntry(source_ref=ref, labels=names, boxes=0, line=line.text)


def read_adapter_manifest(
    text_lines: Iterable[str | bytes], bucket: str, first_line: int = 1
) -> ManifestContent:
    """Validates an uploaded adapter manifest line by line; bad lines are reported, the rest kept."""
    return read_manifest(text_lines, bucket, first_line, parse=parse_adapter_line)
