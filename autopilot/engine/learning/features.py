"""Image descriptors: grayscale and colour thumbnails, HOG-like gradient histograms, colour statistics."""

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
    """Magnitude-weighted histograms of unsigned gradient orientations on a CELLS x CELLS grid."""
    gy, gx = np.gradient(gray)
    magnitude = np.hypot(gx, gy)
    orientation = np.mod(np.arctan2(gy, gx), np.pi)
    bins = np.minimum((orientation / np.pi * ORIENTATION_BINS).astype(np.int64), ORIENTATION_BINS - 1)
    size = gray.shape[0]
    cell_of = np.arange(size) * CELLS // size
    cell_index = cell_of[:, None] * CELLS + cell_of[None, :]
    flat = (cell_index * ORIENTATION_BINS + bins).ravel()
    hist = np.bincount(flat, weights=magnitude.ravel(), minlength=CELLS * CELLS * ORIENTATION_BINS)
    cells = np.asarray(hist, dtype=np.float64).reshape(CELLS * CELLS, ORIENTATION_BINS)
    normalised = cells / np.sqrt((cells**2).sum(axis=1, keepdims=True) + 1e-6)
    return normalised.ravel()


def describe(rgb: np.ndarray, size: int = 32) -> np.ndarray:
    """A fixed-length descriptor of an RGB uint8 image (any size)."""
    small = _resize(rgb, size)
    gray = small.mean(axis=2)
    half, eighth = size // 2, size // 4
    thumb = gray.reshape(half, 2, half, 2).mean(axis=(1, 3)).ravel()
    colour_thumb = small.reshape(eighth, 4, eighth, 4, 3).mean(axis=(1, 3)).ravel()
    quantised = np.minimum((small * COLOUR_BINS).astype(np.int64), COLOUR_BINS - 1).reshape(-1, 3)
    colour = np.concatenate(
        [np.bincount(quantised[:, c], minlength=COLOUR_BINS) / float(size * size) for c in range(3)]
    )
    pixels = small.reshape(-1, 3)
    stats = np.concatenate([pixels.mean(axis=0), pixels.std(axis=0)])
    return np.concatenate([thumb, colour_thumb, _gradient_histograms(gray), colour, stats]).astype(np.float32)


def describe_many(images: list[np.ndarray], size: int = 32) -> np.ndarray:
    return np.stack([describe(image, size) for image in images]) if images else np.zeros((0, 0), np.float32)
