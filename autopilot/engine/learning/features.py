"""Image descriptors: a grayscale thumbnail, HOG-like gradient histograms and colour statistics."""

from __future__ import annotations

import numpy as np
from PIL import Image

ORIENTATION_BINS = 9
CELLS = 4
COLOUR_BINS = 8


def _resize(rgb: np.ndarray, size: int) -> np.ndarray:
    image = Image.fromarray(rgb)
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0


def _gradient_histograms(gray: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(gray)
    magnitude = np.hypot(gx, gy)
    orientation = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned gradients
    bins = np.minimum((orientation / np.pi * ORIENTATION_BINS).astype(np.int64), ORIENTATION_BINS - 1)
    size = gray.shape[0]
    cell = size // CELLS
    out = np.zeros((CELLS, CELLS, ORIENTATION_BINS), dtype=np.float32)
    for row in range(CELLS):
        for col in range(CELLS):
            window = (slice(row * cell, (row + 1) * cell), slice(col * cell, (col + 1) * cell))
            hist = np.bincount(
                bins[window].ravel(), weights=magnitude[window].ravel(), minlength=ORIENTATION_BINS
            )
            norm = np.sqrt(np.sum(hist**2) + 1e-6)
            out[row, col] = hist / norm
    return out.ravel()


def describe(rgb: np.ndarray, size: int = 32) -> np.ndarray:
    """A fixed-length descriptor of an RGB uint8 image (any size)."""
    small = _resize(rgb, size)
    gray = small.mean(axis=2)
    thumb = _resize(rgb, size // 2).mean(axis=2).ravel()
    colour = [
        np.histogram(small[:, :, channel], bins=COLOUR_BINS, range=(0.0, 1.0))[0] / float(size * size)
        for channel in range(3)
    ]
    stats = np.concatenate([small.reshape(-1, 3).mean(axis=0), small.reshape(-1, 3).std(axis=0)])
    return np.concatenate([thumb, _gradient_histograms(gray), *colour, stats]).astype(np.float32)


def describe_many(images: list[np.ndarray], size: int = 32) -> np.ndarray:
    return np.stack([describe(image, size) for image in images]) if images else np.zeros((0, 0), np.float32)
