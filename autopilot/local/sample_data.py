"""Demo data that ships with a package: scikit-learn's bundled 8x8 digits, rendered as PNG.

No download: `sklearn.datasets.load_digits` reads a file inside the scikit-learn wheel. Images are
upscaled to 64x64 (the Custom Labels minimum), dark ink on white, RGB.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

LABEL_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MIN_SIDE = 64


@dataclass(frozen=True)
class SampleImage:
    index: int
    label: str
    png: bytes

    @property
    def filename(self) -> str:
        return f"digit-{self.index:04d}.png"


@dataclass(frozen=True)
class DemoSplit:
    train: list[SampleImage]
    test: list[SampleImage]
    held_out: list[SampleImage]

    def labels(self) -> list[str]:
        return sorted({image.label for image in self.train})


def render_digit(pixels: np.ndarray, side: int = MIN_SIDE) -> bytes:
    """An 8x8 digit (ink 0..16) as a side x side RGB PNG."""
    from PIL import Image

    if side < MIN_SIDE:
        raise ValueError(f"side {side} is below the {MIN_SIDE} px minimum of Custom Labels")
    array = (255 - np.asarray(pixels, dtype=np.float64) * 15).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(array).resize((side, side), Image.Resampling.BILINEAR).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def iter_digits(labels: tuple[str, ...] = LABEL_NAMES) -> Iterator[tuple[int, str, np.ndarray]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    for index, (pixels, target) in enumerate(zip(digits.images, digits.target, strict=True)):
        name = LABEL_NAMES[int(target)]
        if name in labels:
            yield index, name, pixels


def demo_split(
    train_per_label: int = 20,
    test_per_label: int = 5,
    held_out_per_label: int = 3,
    labels: tuple[str, ...] = LABEL_NAMES,
    side: int = MIN_SIDE,
    seed: int | None = None,
) -> DemoSplit:
    """Train, test and held-out images per label.

    With a `seed`, each label's digits are shuffled (seeded, so the split is repeatable) before they
    are cut, so the three sets are drawn alike from the whole collection. Without one, the first
    digits of each label go to train, then test, then held out: scikit-learn's digits are ordered
    by writer, so neighbouring sets then share writers and the held-out figures flatter the model.
    """
    wanted = train_per_label + test_per_label + held_out_per_label
    by_label: dict[str, list[tuple[int, np.ndarray]]] = {}
    for index, name, pixels in iter_digits(labels):
        by_label.setdefault(name, []).append((index, pixels))
    rng = random.Random(seed) if seed is not None else None
    train: list[SampleImage] = []
    test: list[SampleImage] = []
    held_out: list[SampleImage] = []
    for name in labels:
        digits = by_label.get(name, [])
        if rng is not None:
            rng.shuffle(digits)
        for seen, (index, pixels) in enumerate(digits[:wanted]):
            image = SampleImage(index, name, render_digit(pixels, side))
            if seen < train_per_label:
                train.append(image)
            elif seen < train_per_label + test_per_label:
                test.append(image)
            else:
                held_out.append(image)
    return DemoSplit(*(sorted(part, key=lambda image: image.index) for part in (train, test, held_out)))
