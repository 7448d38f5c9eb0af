"""Ground Truth manifest lines: parsing, terminal errors, and non-terminal errors kept in the line.

Terminal problems (not JSON, no usable source-ref) reject the line. Non-terminal problems are
recorded as ``errors`` lists inside the line, where the service reports them: at image level, in
a label attribute's metadata, or on a single bounding-box annotation. Only valid labels and
boxes count in statistics and training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

MAX_LABEL_NAME = 256
MAX_LABELS_PER_IMAGE = 50
MAX_BOXES_PER_IMAGE = 50
MIN_BOX_FRACTION = 0.01  # a box side below 1% of the image side is too small to learn from
MAX_LINE_CHARS = 100_000  # longer JSON lines are terminal content errors

CLASSIFICATION_TYPE = "groundtruth/image-classification"
DETECTION_TYPE = "groundtruth/object-detection"


class ManifestLineError(ValueError):
    """A terminal problem: the line cannot become a dataset entry."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Box:
    label: str
    left: float
    top: float
    width: float
    height: float
    image_width: float
    image_height: float

    def ratios(self) -> tuple[float, float, float, float]:
        return (
            self.left / self.image_width,
            self.top / self.image_height,
            self.width / self.image_width,
            self.height / self.image_height,
        )


@dataclass
class Entry:
    source_ref: str
    line: dict[str, Any]
    image_labels: list[str] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    has_errors: bool = False

    @property
    def labels(self) -> list[str]:
        seen = dict.fromkeys(self.image_labels)
        for box in self.boxes:
            seen.setdefault(box.label)
        return list(seen)

    @property
    def labeled(self) -> bool:
        return bool(self.image_labels or self.boxes)

    @property
    def is_detection(self) -> bool:
        return bool(self.boxes)

    def json_line(self) -> str:
        return json.dumps(self.line, separators=(",", ":"))

    def to_state(self) -> dict[str, Any]:
        return {"line": self.line}

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Entry:
        return parse_line(json.dumps(data["line"]))


def split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.lstrip("/"):
        raise ManifestLineError(
            "ERROR_INVALID_SOURCE_REF", f"source-ref {uri!r} must be an S3 URI like s3://bucket/key.png."
        )
    return parsed.netloc, parsed.path.lstrip("/")


def _strip_errors(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_errors(v) for k, v in value.items() if k != "errors"}
    if isinstance(value, list):
        return [_strip_errors(v) for v in value]
    return value


def _error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def parse_line(text: str) -> Entry:
    """Parses one manifest line; raises ManifestLineError for terminal problems."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestLineError("ERROR_INVALID_JSON_LINE", f"The line is not valid JSON: {exc.msg}.") from exc
    if not isinstance(raw, dict):
        raise ManifestLineError("ERROR_INVALID_JSON_LINE", "The line must be a JSON object.")
    source_ref = raw.get("source-ref")
    if not isinstance(source_ref, str) or not source_ref:
        raise ManifestLineError(
            "ERROR_MISSING_SOURCE_REF", "The line has no source-ref naming the image in S3."
        )
    split_s3_uri(source_ref)
    line: dict[str, Any] = _strip_errors(raw)
    entry = Entry(source_ref=source_ref, line=line)
    image_errors: list[dict[str, str]] = []

    attributes = [k for k in line if k != "source-ref" and not k.endswith("-metadata")]
    for attribute in attributes:
        metadata = line.get(f"{attribute}-metadata")
        if not isinstance(metadata, dict):
            image_errors.append(
                _error(
                    "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT",
                    f"Label attribute {attribute!r} has no {attribute}-metadata object.",
                )
            )
            continue
        kind = metadata.get("type")
        if kind == CLASSIFICATION_TYPE:
            _parse_classification(entry, line[attribute], metadata)
        elif kind == DETECTION_TYPE:
            _parse_detection(entry, line[attribute], metadata)
        else:
            metadata["errors"] = [
                _error(
                    "ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT",
                    f"{attribute}-metadata.type must be {CLASSIFICATION_TYPE!r} or {DETECTION_TYPE!r}.",
                )
            ]
            entry.has_errors = True
    if len(entry.image_labels) > MAX_LABELS_PER_IMAGE:
        image_errors.append(
            _error(
                "ERROR_TOO_MANY_LABELS",
                f"An image can have at most {MAX_LABELS_PER_IMAGE} labels; only the first are used.",
            )
        )
        entry.image_labels = entry.image_labels[:MAX_LABELS_PER_IMAGE]
    if image_errors:
        line["errors"] = image_errors
        entry.has_errors = True
    return entry


def _parse_classification(entry: Entry, value: Any, metadata: dict[str, Any]) -> None:
    name = metadata.get("class-name")
    problems: list[dict[str, str]] = []
    if not isinstance(name, str) or not name:
        problems.append(
            _error("ERROR_INVALID_LABEL_ATTRIBUTE_METADATA_FORMAT", "class-name must be a string.")
        )
    elif len(name) > MAX_LABEL_NAME:
        problems.append(
            _error(
                "ERROR_INVALID_LABEL_NAME_LENGTH",
                f"Label name is {len(name)} characters; the limit is {MAX_LABEL_NAME}.",
            )
        )
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(
            _error("ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT", "The label attribute value must be a number.")
        )
    if problems:
        metadata["errors"] = problems
        entry.has_errors = True
        return
    assert isinstance(name, str)
    if name not in entry.image_labels:
        entry.image_labels.append(name)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _parse_detection(entry: Entry, value: Any, metadata: dict[str, Any]) -> None:
    meta_errors: list[dict[str, str]] = []
    class_map = metadata.get("class-map")
    objects = metadata.get("objects")
    if not isinstance(value, dict) or not isinstance(value.get("annotations"), list):
        metadata["errors"] = [
            _error(
                "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT",
                "The bounding-box attribute needs an annotations list.",
            )
        ]
        entry.has_errors = True
        return
    sizes = value.get("image_size")
    size = sizes[0] if isinstance(sizes, list) and sizes and isinstance(sizes[0], dict) else None
    width = _number(size.get("width")) if size else None
    height = _number(size.get("height")) if size else None
    if not width or not height or width <= 0 or height <= 0:
        metadata["errors"] = [
            _error("ERROR_INVALID_IMAGE_DIMENSION", "image_size must give a positive width and height.")
        ]
        entry.has_errors = True
        return
    if not isinstance(class_map, dict):
        metadata["errors"] = [
            _error("ERROR_MISSING_CLASS_MAP", "class-map must map class ids to label names.")
        ]
        entry.has_errors = True
        return
    annotations: list[Any] = value["annotations"]
    if len(annotations) > MAX_BOXES_PER_IMAGE:
        meta_errors.append(
            _error(
                "ERROR_TOO_MANY_BOUNDING_BOXES",
                f"An image can have at most {MAX_BOXES_PER_IMAGE} bounding boxes; only the first are used.",
            )
        )
    for index, annotation in enumerate(annotations[:MAX_BOXES_PER_IMAGE]):
        problem = _check_annotation(annotation, index, class_map, objects, width, height)
        if problem is not None:
            if isinstance(annotation, dict):
                annotation["errors"] = [problem]
            else:
                meta_errors.append(problem)
            entry.has_errors = True
            continue
        label = str(class_map[str(annotation["class_id"])])
        entry.boxes.append(
            Box(
                label,
                float(annotation["left"]),
                float(annotation["top"]),
                float(annotation["width"]),
                float(annotation["height"]),
                width,
                height,
            )
        )
    if meta_errors:
        metadata["errors"] = meta_errors
        entry.has_errors = True


def _check_annotation(
    annotation: Any, index: int, class_map: dict[str, Any], objects: Any, width: float, height: float
) -> dict[str, str] | None:
    if not isinstance(annotation, dict):
        return _error("ERROR_INVALID_ANNOTATION", f"Annotation {index} must be an object.")
    if str(annotation.get("class_id")) not in class_map:
        return _error(
            "ERROR_MISSING_CLASS_MAP_ID", f"class_id {annotation.get('class_id')!r} is not in class-map."
        )
    name = class_map[str(annotation.get("class_id"))]
    if not isinstance(name, str) or not name or len(name) > MAX_LABEL_NAME:
        return _error(
            "ERROR_INVALID_LABEL_NAME_LENGTH", f"Label names must be 1-{MAX_LABEL_NAME} characters."
        )
    if not isinstance(objects, list) or index >= len(objects) or not isinstance(objects[index], dict):
        return _error(
            "ERROR_MISSING_BOUNDING_BOX_CONFIDENCE", f"objects[{index}] with a confidence is missing."
        )
    if _number(objects[index].get("confidence")) is None:
        return _error("ERROR_MISSING_BOUNDING_BOX_CONFIDENCE", f"objects[{index}].confidence is missing.")
    left, top = _number(annotation.get("left")), _number(annotation.get("top"))
    w, h = _number(annotation.get("width")), _number(annotation.get("height"))
    if left is None or top is None or w is None or h is None:
        return _error("ERROR_INVALID_BOUNDING_BOX", "left, top, width and height must be numbers (pixels).")
    if left < 0 or top < 0 or w <= 0 or h <= 0 or left + w > width + 0.5 or top + h > height + 0.5:
        return _error(
            "ERROR_INVALID_BOUNDING_BOX",
            f"The box ({left}, {top}, {w}x{h}) does not lie inside the {width:g}x{height:g} image.",
        )
    if w < MIN_BOX_FRACTION * width or h < MIN_BOX_FRACTION * height:
        return _error("ERROR_BOUNDING_BOX_TOO_SMALL", "A box side is below 1% of the image side.")
    return None


def parse_manifest(blob: bytes) -> tuple[list[Entry], list[tuple[int, ManifestLineError]]]:
    """Parses a whole manifest (JSON Lines); returns the entries and the terminal errors by line number."""
    entries: list[Entry] = []
    failures: list[tuple[int, ManifestLineError]] = []
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        return [], [(1, ManifestLineError("ERROR_INVALID_MANIFEST", "The manifest is not UTF-8 text."))]
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        if len(raw) > MAX_LINE_CHARS:
            failures.append(
                (
                    number,
                    ManifestLineError(
                        "ERROR_JSON_LINE_TOO_LONG",
                        f"The line has {len(raw)} characters; the limit is {MAX_LINE_CHARS}.",
                    ),
                )
            )
            continue
        try:
            entries.append(parse_line(raw))
        except ManifestLineError as exc:
            failures.append((number, exc))
    return entries, failures
