"""Test images and manifest lines: colour classes, digits, and scenes with boxed objects."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"red": (200, 30, 30), "blue": (30, 40, 200), "green": (30, 170, 40)}


def to_png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def to_jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def colour_image(name: str, seed: int, size: tuple[int, int] = (64, 64)) -> bytes:
    """A noisy image dominated by one colour, with a random darker stripe."""
    rng = np.random.default_rng(seed)
    base = np.array(COLOURS[name], dtype=np.float64)
    noise = rng.normal(0, 25, (size[1], size[0], 3))
    array = np.clip(base + noise, 0, 255)
    row = int(rng.integers(0, size[1] - 8))
    array[row : row + 6] *= 0.6
    return to_png(array)


def digit_png(image8: np.ndarray, side: int = 64) -> bytes:
    """An sklearn 8x8 digit (0..16 ink) rendered as dark ink on white, side x side px."""
    array = (255 - image8 * 15).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(array).resize((side, side), Image.Resampling.BILINEAR).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def scene(
    seed: int, objects: list[str], size: int = 128
) -> tuple[bytes, list[tuple[str, tuple[int, int, int, int]]]]:
    """A noisy grey scene with coloured squares ("red"/"blue") at random free places.

    Returns the PNG and the boxes as (label, (left, top, width, height)) in pixels.
    """
    rng = np.random.default_rng(seed)
    array = np.clip(rng.normal(128, 20, (size, size, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(array)
    draw = ImageDraw.Draw(image)
    boxes: list[tuple[str, tuple[int, int, int, int]]] = []
    for label in objects:
        for _ in range(50):
            side = int(rng.integers(size // 5, size // 3))
            left, top = int(rng.integers(0, size - side)), int(rng.integers(0, size - side))
            if all(
                left + side <= b[0] or b[0] + b[2] <= left or top + side <= b[1] or b[1] + b[3] <= top
                for _, b in boxes
            ):
                draw.rectangle([left, top, left + side - 1, top + side - 1], fill=COLOURS[label])
                boxes.append((label, (left, top, side, side)))
                break
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue(), boxes


def classification_line(uri: str, label: str, attribute: str = "label", **extra: Any) -> str:
    line = {
        "source-ref": uri,
        attribute: 1,
        f"{attribute}-metadata": {
            "confidence": 1,
            "class-name": label,
            "human-annotated": "yes",
            "creation-date": "2026-01-01T00:00:00",
            "type": "groundtruth/image-classification",
        },
    }
    line.update(extra)
    return json.dumps(line)


def detection_line(
    uri: str, boxes: list[tuple[str, tuple[float, float, float, float]]], size: tuple[int, int]
) -> str:
    names = sorted({label for label, _ in boxes})
    class_ids = {name: i for i, name in enumerate(names)}
    return json.dumps(
        {
            "source-ref": uri,
            "bounding-box": {
                "image_size": [{"width": size[0], "height": size[1], "depth": 3}],
                "annotations": [
                    {"class_id": class_ids[label], "left": b[0], "top": b[1], "width": b[2], "height": b[3]}
                    for label, b in boxes
                ],
            },
            "bounding-box-metadata": {
                "objects": [{"confidence": 1} for _ in boxes],
                "class-map": {str(i): name for name, i in class_ids.items()},
                "type": "groundtruth/object-detection",
                "human-annotated": "yes",
                "creation-date": "2026-01-01T00:00:00",
                "job-name": "labeling",
            },
        }
    )


def unlabeled_line(uri: str) -> str:
    return json.dumps({"source-ref": uri})
