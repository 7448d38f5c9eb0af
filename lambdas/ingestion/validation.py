"""Checks made before anything is sent to Rekognition, in pure Python (the function has no Pillow).

- Images: the format is read from the content (PNG or JPEG magic bytes), the dimensions from the
  PNG IHDR chunk or the JPEG start-of-frame segment; then size, side and aspect-ratio limits.
- Image ends: a JPEG must end with its end-of-image marker, a PNG with its IEND chunk, so that a
  truncated upload is rejected here rather than at training.
- Labels: the name rules of Custom Labels (folder names and manifest class names alike).
- Manifest lines: JSON object, source-ref in the data bucket, image-level labels and bounding
  boxes consistent with their metadata and inside the image.

Every failure raises Rejected with a sentence a person can act on.
"""

from __future__ import annotations

import json
import math
import struct
import unicodedata
from dataclasses import dataclass
from typing import Any

from lambdas.common.constants import (
    DATASET_ENTRY_MAX_CHARS,
    IMAGE_MAX_ASPECT_RATIO,
    IMAGE_MAX_BYTES,
    IMAGE_MAX_SIDE,
    IMAGE_MIN_SIDE,
    LABEL_NAME_MAX_LENGTH,
    MAX_BOXES_PER_IMAGE,
    MAX_LABELS_PER_IMAGE,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
# Start-of-frame markers carry the dimensions; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})
JPEG_EOI = b"\xff\xd9"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # zero length, type, CRC: the last 12 bytes of a PNG
IMAGE_TAIL_BYTES = 64  # read from the end of an image to find its end marker
IMAGE_CLASSIFICATION_TYPE = "groundtruth/image-classification"
OBJECT_DETECTION_TYPE = "groundtruth/object-detection"
METADATA_SUFFIX = "-metadata"
# A project's task: image-level labels or bounding boxes (the use_case values of the manifest summary).
TASK_IMAGE_LEVEL = "IMAGE_LEVEL_LABELS"
TASK_BOUNDING_BOX = "OBJECT_LOCALIZATION"
TASK_NAMES = {TASK_IMAGE_LEVEL: "image-level labels", TASK_BOUNDING_BOX: "bounding boxes"}


class Rejected(ValueError):
    """Input that must not be sent; str() is the reason shown to the user."""


class NeedMoreBytes(Exception):
    """The header is longer than the bytes read so far; read at least `needed` bytes and retry."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


@dataclass(frozen=True)
class ImageInfo:
    format: str  # "PNG" | "JPEG"
    width: int
    height: int


def read_image_header(data: bytes) -> ImageInfo:
    """Format and dimensions from the first bytes of a file.

    Raises NeedMoreBytes when the dimensions lie beyond `data`, Rejected when the content is
    neither PNG nor JPEG or its header is broken.
    """
    if data.startswith(PNG_SIGNATURE):
        return _png_header(data)
    if data.startswith(JPEG_SOI):
        return _jpeg_header(data)
    if len(data) < len(PNG_SIGNATURE) and (PNG_SIGNATURE.startswith(data) or JPEG_SOI.startswith(data[:2])):
        raise NeedMoreBytes(len(PNG_SIGNATURE))
    raise Rejected(
        "the file is not a PNG or JPEG image (checked by its content, not its name); convert it to "
        "PNG or JPEG and upload it again"
    )


def _png_header(data: bytes) -> ImageInfo:
    if len(data) < 24:
        raise NeedMoreBytes(24)
    if data[12:16] != b"IHDR":
        raise Rejected("the PNG file is damaged (no IHDR header); export it again")
    width, height = struct.unpack(">II", data[16:24])
    return ImageInfo("PNG", width, height)


def _jpeg_header(data: bytes) -> ImageInfo:
    pos = 2
    while True:
        # Segments start with one or more 0xFF fill bytes followed by the marker byte.
        if pos >= len(data):
            raise NeedMoreBytes(pos + 2)
        if data[pos] != 0xFF:
            raise Rejected("the JPEG file is damaged (bad segment marker); export it again")
        while pos < len(data) and data[pos] == 0xFF:
            pos += 1
        if pos >= len(data):
            raise NeedMoreBytes(pos + 2)
        marker = data[pos]
        pos += 1
        if marker in _JPEG_STANDALONE_MARKERS:
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            raise Rejected("the JPEG file has no frame header (dimensions); export it again")
        if pos + 2 > len(data):
            raise NeedMoreBytes(pos + 2)
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2:
            raise Rejected("the JPEG file is damaged (bad segment length); export it again")
        if marker in _JPEG_SOF_MARKERS:
            if pos + 7 > len(data):
                raise NeedMoreBytes(pos + 7)
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            return ImageInfo("JPEG", width, height)
        pos += length


def check_image_end(image_format: str, tail: bytes) -> None:
    """A complete file ends with its format's end marker; a truncated upload does not.

    JPEG: the end-of-image marker FF D9 (zero bytes of padding after it are tolerated).
    PNG: the IEND chunk, always the same 12 bytes.
    """
    if image_format == "JPEG" and not tail.rstrip(b"\x00").endswith(JPEG_EOI):
        raise Rejected(
            "the JPEG file does not end with its end-of-image marker: the upload was cut short or the file "
            "is damaged; upload the complete file again"
        )
    if image_format == "PNG" and not tail.endswith(PNG_IEND):
        raise Rejected(
            "the PNG file does not end with its IEND chunk: the upload was cut short or the file is "
            "damaged; upload the complete file again"
        )


def check_image(info: ImageInfo, size_bytes: int) -> None:
    """The Custom Labels limits on one image."""
    if size_bytes > IMAGE_MAX_BYTES:
        raise Rejected(
            f"the image is {size_bytes / 1024 / 1024:.1f} MB; Custom Labels accepts at most "
            f"{IMAGE_MAX_BYTES // 1024 // 1024} MB: compress or resize it"
        )
    width, height = info.width, info.height
    if width == 0 or height == 0:
        raise Rejected(f"the {info.format} header gives {width}x{height} pixels; export the image again")
    if min(width, height) < IMAGE_MIN_SIDE or max(width, height) > IMAGE_MAX_SIDE:
        raise Rejected(
            f"the image is {width}x{height} pixels; each side must be between {IMAGE_MIN_SIDE} and "
            f"{IMAGE_MAX_SIDE} pixels: resize it"
        )
    ratio = max(width, height) / min(width, height)
    if ratio > IMAGE_MAX_ASPECT_RATIO:
        raise Rejected(
            f"the image is {width}x{height} pixels, an aspect ratio of {ratio:.1f}:1; at most "
            f"{IMAGE_MAX_ASPECT_RATIO:.0f}:1 is accepted: crop it"
        )


def check_label(name: str) -> str:
    """Returns the label if Custom Labels accepts it as a label name.

    The Developer Guide limits label names to 256 characters (ERROR_INVALID_LABEL_NAME_LENGTH) and
    the API's label filter (DatasetLabel) takes one or more characters other than line breaks.
    Edge spaces and control characters (tab included) are refused too: they make a label that looks
    like another one and cannot be told apart in reports.
    """
    if not isinstance(name, str) or not name.strip():
        raise Rejected("the label name is empty; give the image a label")
    if len(name) > LABEL_NAME_MAX_LENGTH:
        raise Rejected(
            f"the label name {name[:40]!r}... has {len(name)} characters; at most {LABEL_NAME_MAX_LENGTH} "
            "are allowed: shorten it"
        )
    if name != name.strip():
        raise Rejected(f"the label name {name!r} starts or ends with a space; remove it")
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise Rejected(f"the label name {name!r} contains control characters; remove them")
    return name


# ---------------------------------------------------------------------------
# Manifest lines
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestEntry:
    source_ref: str
    labels: tuple[str, ...]  # image-level and bounding-box class names
    boxes: int
    line: str  # compact JSON, as sent to UpdateDatasetEntries
    task: str | None = None  # TASK_IMAGE_LEVEL, TASK_BOUNDING_BOX, or None for an unlabeled line


def line_object(text: str, bucket: str) -> tuple[dict[str, Any], str]:
    """A manifest line's JSON object and its source-ref (in the data bucket), or Rejected."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as error:
        raise Rejected(f"not valid JSON ({error.msg} at column {error.colno}); fix the line") from None
    if not isinstance(obj, dict):
        raise Rejected("a manifest line must be one JSON object; fix the line")
    ref = obj.get("source-ref")
    if not isinstance(ref, str) or not ref:
        raise Rejected('the line has no "source-ref"; add "source-ref": "s3://<bucket>/<key>"')
    check_source_ref(ref, bucket)
    return obj, ref


def parse_manifest_line(text: str, bucket: str) -> ManifestEntry:
    """Validates one Ground Truth line (image-level and/or object localization)."""
    obj, ref = line_object(text, bucket)

    labels: list[str] = []
    boxes = 0
    kinds: set[str] = set()
    for attribute, value in obj.items():
        if attribute == "source-ref" or attribute.endswith(METADATA_SUFFIX):
            continue
        metadata = obj.get(attribute + METADATA_SUFFIX)
        if metadata is None:
            continue
        if not isinstance(metadata, dict):
            raise Rejected(f'"{attribute}{METADATA_SUFFIX}" must be a JSON object; fix the line')
        kind = metadata.get("type")
        if isinstance(kind, str):
            kinds.add(kind)
        if kind == IMAGE_CLASSIFICATION_TYPE:
            labels.append(_image_level_label(attribute, value, metadata))
        elif kind == OBJECT_DETECTION_TYPE:
            names = _bounding_boxes(attribute, value, metadata)
            boxes += len(names)
            labels.extend(names)
        else:
            raise Rejected(
                f'"{attribute}{METADATA_SUFFIX}" has type {kind!r}; use {IMAGE_CLASSIFICATION_TYPE!r} '
                f"or {OBJECT_DETECTION_TYPE!r}"
            )
    distinct = tuple(dict.fromkeys(labels))
    if len(distinct) > MAX_LABELS_PER_IMAGE:
        raise Rejected(
            f"the image has {len(distinct)} labels; at most {MAX_LABELS_PER_IMAGE} are allowed per image"
        )
    line = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if len(line) > DATASET_ENTRY_MAX_CHARS:
        raise Rejected(
            f"the line has {len(line)} characters; a dataset entry holds at most {DATASET_ENTRY_MAX_CHARS}"
        )
    task = (
        TASK_BOUNDING_BOX
        if OBJECT_DETECTION_TYPE in kinds
        else TASK_IMAGE_LEVEL
        if IMAGE_CLASSIFICATION_TYPE in kinds
        else None
    )
    return ManifestEntry(source_ref=ref, labels=distinct, boxes=boxes, line=line, task=task)


def check_source_ref(ref: str, bucket: str) -> None:
    if not ref.startswith("s3://"):
        raise Rejected(f"source-ref {ref!r} must be an s3:// location in bucket {bucket}")
    ref_bucket, _, key = ref[len("s3://") :].partition("/")
    if ref_bucket != bucket:
        raise Rejected(
            f"source-ref {ref!r} is in bucket {ref_bucket!r}; all images of a dataset must be in the "
            f"data bucket {bucket!r}: copy the image there and point the line at it"
        )
    if not key or key.endswith("/"):
        raise Rejected(f"source-ref {ref!r} names no object; point it at an image file")


def _image_level_label(attribute: str, value: Any, metadata: dict[str, Any]) -> str:
    if not isinstance(value, int) or isinstance(value, bool):
        raise Rejected(f'"{attribute}" must be an integer class id for an image-level label; fix the line')
    name = metadata.get("class-name")
    if not isinstance(name, str):
        raise Rejected(f'"{attribute}{METADATA_SUFFIX}" needs a "class-name" string; add the label name')
    return _labelled(attribute, name)


def _labelled(attribute: str, name: str) -> str:
    try:
        return check_label(name)
    except Rejected as error:
        raise Rejected(f'"{attribute}": {error}') from None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _bounding_boxes(attribute: str, value: Any, metadata: dict[str, Any]) -> list[str]:
    where = f'"{attribute}"'
    if not isinstance(value, dict):
        raise Rejected(f"{where} must be an object with image_size and annotations; fix the line")
    sizes = value.get("image_size")
    if not isinstance(sizes, list) or len(sizes) != 1 or not isinstance(sizes[0], dict):
        raise Rejected(f'{where}: "image_size" must be a list with one {{"width", "height", "depth"}} object')
    width, height = sizes[0].get("width"), sizes[0].get("height")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise Rejected(f'{where}: "image_size" width and height must be positive integers (pixels)')
    annotations = value.get("annotations")
    if not isinstance(annotations, list):
        raise Rejected(f'{where}: "annotations" must be a list of boxes; use [] for an image without objects')
    if len(annotations) > MAX_BOXES_PER_IMAGE:
        raise Rejected(
            f"{where} has {len(annotations)} bounding boxes; at most {MAX_BOXES_PER_IMAGE} are allowed "
            "per image"
        )
    class_map = metadata.get("class-map")
    if not isinstance(class_map, dict):
        raise Rejected(f'"{attribute}{METADATA_SUFFIX}" needs a "class-map" object ({{"0": "label"}})')
    objects = metadata.get("objects")
    if not isinstance(objects, list) or len(objects) != len(annotations):
        raise Rejected(
            f'"{attribute}{METADATA_SUFFIX}": "objects" must have one entry per annotation '
            f"({len(annotations)}); fix the line"
        )
    names: list[str] = []
    for index, box in enumerate(annotations):
        here = f"{where} box {index}"
        if not isinstance(box, dict):
            raise Rejected(f"{here} must be an object with class_id, left, top, width, height")
        class_id = box.get("class_id")
        if not isinstance(class_id, int) or str(class_id) not in class_map:
            raise Rejected(f"{here}: class_id {class_id!r} is not in the class-map; add it or fix the id")
        raw = [box.get(k) for k in ("left", "top", "width", "height")]
        if not all(_number(v) for v in raw):
            raise Rejected(f"{here}: left, top, width and height must be numbers (pixels)")
        left, top, box_width, box_height = (float(v) for v in raw if v is not None)
        if left < 0 or top < 0 or box_width <= 0 or box_height <= 0:
            raise Rejected(f"{here}: left and top must be >= 0 and width and height > 0 (pixels)")
        if left + box_width > width or top + box_height > height:
            raise Rejected(
                f"{here} ({left:g}, {top:g}, {box_width:g}x{box_height:g}) extends outside the "
                f"{width}x{height} image; fix the coordinates (pixels, origin top-left)"
            )
        names.append(_labelled(attribute, class_map[str(class_id)]))
    return names
