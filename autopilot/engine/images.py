"""Image rules of the service: PNG or JPEG by content, byte size, 64-4096 px, aspect ratio <= 20:1."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from autopilot.engine import errors

MIN_SIDE = 64
MAX_SIDE = 4096
MAX_ASPECT = 20.0
MAX_S3_BYTES = 15 * 1024 * 1024
MAX_INLINE_BYTES = 4 * 1024 * 1024


def image_format(data: bytes) -> str | None:
    """'PNG', 'JPEG' or None, judged by content (magic bytes), never by file name."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    return None


@dataclass(frozen=True)
class ImageProblem:
    code: str
    message: str


def check_image(data: bytes, *, inline: bool) -> tuple[np.ndarray | None, ImageProblem | None]:
    """Decodes an image to an RGB uint8 array, or names the rule it breaks."""
    limit = MAX_INLINE_BYTES if inline else MAX_S3_BYTES
    if len(data) > limit:
        return None, ImageProblem(
            "ERROR_IMAGE_TOO_LARGE", f"The image is {len(data)} bytes; the limit is {limit}."
        )
    if image_format(data) is None:
        return None, ImageProblem(
            "ERROR_UNSUPPORTED_IMAGE_FORMAT", "The image is not a PNG or JPEG file (judged by its content)."
        )
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if min(width, height) < MIN_SIDE:
                return None, ImageProblem(
                    "ERROR_INVALID_IMAGE_DIMENSION",
                    f"The image is {width}x{height} px; each side must be at least {MIN_SIDE} px.",
                )
            if max(width, height) > MAX_SIDE:
                return None, ImageProblem(
                    "ERROR_INVALID_IMAGE_DIMENSION",
                    f"The image is {width}x{height} px; each side must be at most {MAX_SIDE} px.",
                )
            if max(width, height) / min(width, height) > MAX_ASPECT:
                return None, ImageProblem(
                    "ERROR_INVALID_IMAGE_DIMENSION",
                    f"The image is {width}x{height} px; the aspect ratio must be at most 20:1.",
                )
            return np.asarray(img.convert("RGB")), None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return None, ImageProblem("ERROR_INVALID_IMAGE", f"The image cannot be decoded: {exc}")


def decode_for_detection(data: bytes, *, inline: bool) -> np.ndarray:
    """Decodes an image sent to DetectCustomLabels/DetectModerationLabels or raises the service's error."""
    array, problem = check_image(data, inline=inline)
    if problem is None and array is not None:
        return array
    assert problem is not None
    if problem.code == "ERROR_IMAGE_TOO_LARGE":
        raise errors.image_too_large(problem.message)
    if problem.code in ("ERROR_UNSUPPORTED_IMAGE_FORMAT", "ERROR_INVALID_IMAGE"):
        raise errors.invalid_image_format(f"Request has invalid image format: {problem.message}")
    if "at most" in problem.message and "aspect" not in problem.message:
        raise errors.image_too_large(problem.message)
    raise errors.invalid_parameter(problem.message)
