"""A small sliding-window object detector on integral images.

Each image is reduced to a few per-pixel channels (colour, gradient orientation energy, gradient
magnitude) whose summed-area tables give any window's descriptor in constant time: channel
means over a 3x3 grid of cells, the mean of a surrounding ring, the contrast between the two,
and the window's shape. A multinomial logistic regression (labels + background) is trained on
the labelled boxes, jittered copies, and background windows that miss or only partly cover the
boxes (so the model prefers well-aligned windows). Detection scores thousands of windows of the
typical box shapes (k-means on training box sizes) at once and keeps the best non-overlapping
ones per label (non-max suppression).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

Box = tuple[float, float, float, float]  # left, top, width, height as ratios of the image size

ANALYSIS_SIDE = 128
BACKGROUND = "__background__"
ORIENTATIONS = 6
GRID = 3
SCALES = (0.8, 0.9, 1.0, 1.12, 1.25)
STRIDE = 0.125  # of the window side
MAX_WINDOWS = 20_000


@dataclass(frozen=True)
class Detection:
    label: str
    score: float  # 0..1
    box: Box


def iou(a: Box, b: Box) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    inter = max(0.0, min(ax2, bx2) - max(a[0], b[0])) * max(0.0, min(ay2, by2) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _iou_matrix(windows: np.ndarray, box: Box) -> np.ndarray:
    x1 = np.maximum(windows[:, 0], box[0])
    y1 = np.maximum(windows[:, 1], box[1])
    x2 = np.minimum(windows[:, 0] + windows[:, 2], box[0] + box[2])
    y2 = np.minimum(windows[:, 1] + windows[:, 3], box[1] + box[3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = windows[:, 2] * windows[:, 3] + box[2] * box[3] - inter
    return np.asarray(inter / np.maximum(union, 1e-12))


class ChannelImage:
    """Per-pixel channels of an image and their summed-area tables."""

    def __init__(self, rgb: np.ndarray) -> None:
        height, width = rgb.shape[:2]
        scale = min(1.0, ANALYSIS_SIDE / max(height, width))
        size = (max(8, round(width * scale)), max(8, round(height * scale)))
        small = (
            np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR), dtype=np.float64) / 255.0
        )
        gray = small.mean(axis=2)
        gy, gx = np.gradient(gray)
        magnitude = np.hypot(gx, gy)
        angle = np.mod(np.arctan2(gy, gx), np.pi)
        bins = np.minimum((angle / np.pi * ORIENTATIONS).astype(int), ORIENTATIONS - 1)
        orientation = np.zeros((*gray.shape, ORIENTATIONS))
        np.put_along_axis(orientation, bins[..., None], magnitude[..., None], axis=2)
        channels = np.concatenate([small, gray[..., None], orientation, magnitude[..., None]], axis=2)
        self.height, self.width = gray.shape
        self.channels = channels.shape[2]
        table = np.zeros((self.height + 1, self.width + 1, self.channels))
        table[1:, 1:] = channels.cumsum(axis=0).cumsum(axis=1)
        self.table = table

    def means(self, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> np.ndarray:
        """Channel means of many pixel rectangles [x0, x1) x [y0, y1) at once."""
        x0 = np.clip(x0, 0, self.width - 1)
        y0 = np.clip(y0, 0, self.height - 1)
        x1 = np.clip(np.maximum(x1, x0 + 1), 1, self.width)
        y1 = np.clip(np.maximum(y1, y0 + 1), 1, self.height)
        t = self.table
        sums = t[y1, x1] - t[y0, x1] - t[y1, x0] + t[y0, x0]
        area = ((x1 - x0) * (y1 - y0))[:, None]
        return np.asarray(sums / area)

    def describe(self, windows: np.ndarray) -> np.ndarray:
        """Descriptors of windows given as ratios (n, 4): left, top, width, height."""
        left = windows[:, 0] * self.width
        top = windows[:, 1] * self.height
        w = windows[:, 2] * self.width
        h = windows[:, 3] * self.height
        parts = []
        for row in range(GRID):
            for col in range(GRID):
                parts.append(
                    self.means(
                        np.floor(left + col * w / GRID).astype(int),
                        np.floor(top + row * h / GRID).astype(int),
                        np.ceil(left + (col + 1) * w / GRID).astype(int),
                        np.ceil(top + (row + 1) * h / GRID).astype(int),
                    )
                )
        inner = self.means(
            np.floor(left).astype(int),
            np.floor(top).astype(int),
            np.ceil(left + w).astype(int),
            np.ceil(top + h).astype(int),
        )
        pad_w, pad_h = w * 0.3, h * 0.3
        outer_x0 = np.floor(np.clip(left - pad_w, 0, None)).astype(int)
        outer_y0 = np.floor(np.clip(top - pad_h, 0, None)).astype(int)
        outer_x1 = np.ceil(np.clip(left + w + pad_w, None, self.width)).astype(int)
        outer_y1 = np.ceil(np.clip(top + h + pad_h, None, self.height)).astype(int)
        outer = self.means(outer_x0, outer_y0, outer_x1, outer_y1)
        outer_area = ((outer_x1 - outer_x0) * (outer_y1 - outer_y0))[:, None].astype(float)
        inner_area = (np.ceil(w) * np.ceil(h))[:, None]
        ring_area = np.maximum(outer_area - inner_area, 1.0)
        ring = (outer * outer_area - inner * np.minimum(inner_area, outer_area)) / ring_area
        ring = np.where(outer_area > inner_area + 1, ring, inner)
        shape = np.stack(
            [windows[:, 2], windows[:, 3], windows[:, 2] / np.maximum(windows[:, 3], 1e-6)], axis=1
        )
        return np.concatenate([*parts, inner, ring, inner - ring, np.abs(inner - ring), shape], axis=1)


class WindowDetector:
    def __init__(self, labels: list[str], seed: int = 7) -> None:
        self.labels = labels
        self.seed = seed
        self.shapes: list[tuple[float, float]] = []
        self.scaler = StandardScaler()
        self.model: LogisticRegression | None = None
        self.classes: list[str] = []

    def fit(self, samples: list[tuple[np.ndarray, list[tuple[str, Box]]]]) -> WindowDetector:
        rng = np.random.default_rng(self.seed)
        sizes = np.array([[box[2], box[3]] for _, boxes in samples for _, box in boxes], dtype=np.float64)
        distinct = len(np.unique(np.round(sizes, 2), axis=0))
        clusters = min(4, distinct)
        if clusters <= 1:
            self.shapes = [(float(sizes[:, 0].mean()), float(sizes[:, 1].mean()))]
        else:
            kmeans = KMeans(n_clusters=clusters, n_init=4, random_state=self.seed).fit(sizes)
            self.shapes = [(float(w), float(h)) for w, h in kmeans.cluster_centers_]
        features: list[np.ndarray] = []
        targets: list[str] = []
        for rgb, boxes in samples:
            image = ChannelImage(rgb)
            windows: list[Box] = []
            names: list[str] = []
            for label, box in boxes:
                windows.append(box)
                names.append(label)
                for _ in range(2):  # well-aligned jittered copies
                    jitter = _jitter(rng, box, 0.06)
                    if iou(jitter, box) >= 0.7:
                        windows.append(jitter)
                        names.append(label)
                for _ in range(3):  # poorly aligned copies are background
                    shifted = _jitter(rng, box, 0.45)
                    if max((iou(shifted, b) for _, b in boxes), default=0.0) < 0.4:
                        windows.append(shifted)
                        names.append(BACKGROUND)
            for _ in range(12):
                w, h = self.shapes[int(rng.integers(len(self.shapes)))]
                w, h = min(w * rng.uniform(0.6, 1.5), 1.0), min(h * rng.uniform(0.6, 1.5), 1.0)
                candidate = (float(rng.uniform(0, 1 - w)), float(rng.uniform(0, 1 - h)), w, h)
                if all(iou(candidate, box) < 0.3 for _, box in boxes):
                    windows.append(candidate)
                    names.append(BACKGROUND)
            features.append(image.describe(np.array(windows)))
            targets.extend(names)
        self.classes = sorted(set(targets))
        y = np.array([self.classes.index(t) for t in targets])
        x = self.scaler.fit_transform(np.concatenate(features))
        if len(self.classes) == 1:
            raise ValueError("Detection training needs background and object windows.")
        self.model = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
        return self

    def windows(self) -> np.ndarray:
        out = []
        for w, h in self.shapes:
            for scale in SCALES:
                ww, hh = min(w * scale, 1.0), min(h * scale, 1.0)
                lefts = np.arange(0.0, 1.0 - ww + 1e-9, max(ww * STRIDE, 0.01))
                tops = np.arange(0.0, 1.0 - hh + 1e-9, max(hh * STRIDE, 0.01))
                grid_left, grid_top = np.meshgrid(lefts, tops)
                block = np.stack(
                    [
                        grid_left.ravel(),
                        grid_top.ravel(),
                        np.full(grid_left.size, ww),
                        np.full(grid_left.size, hh),
                    ],
                    axis=1,
                )
                out.append(block)
        windows = np.concatenate(out)
        if len(windows) > MAX_WINDOWS:
            windows = windows[np.linspace(0, len(windows) - 1, MAX_WINDOWS).astype(int)]
        return windows

    def detect(self, rgb: np.ndarray, min_score: float = 0.05) -> list[Detection]:
        assert self.model is not None
        image = ChannelImage(rgb)
        windows = self.windows()
        proba = self.model.predict_proba(self.scaler.transform(image.describe(windows)))
        candidates: list[Detection] = []
        for column, name in enumerate(self.classes):
            if name == BACKGROUND:
                continue
            scores = proba[:, column]
            keep = np.flatnonzero(scores >= min_score)
            for index in keep[np.argsort(-scores[keep])][:200]:
                left, top, width, height = (float(v) for v in windows[index])
                candidates.append(Detection(name, float(scores[index]), (left, top, width, height)))
        return non_max_suppression(candidates)


def _jitter(rng: np.random.Generator, box: Box, amount: float) -> Box:
    dx, dy = rng.uniform(-amount, amount, 2) * np.array(box[2:])
    scale = rng.uniform(1 - amount / 2, 1 + amount / 2)
    w, h = min(box[2] * scale, 1.0), min(box[3] * scale, 1.0)
    return (
        float(np.clip(box[0] + dx, 0, 1 - w)),
        float(np.clip(box[1] + dy, 0, 1 - h)),
        float(w),
        float(h),
    )


def non_max_suppression(
    candidates: list[Detection], overlap: float = 0.3, across: float = 0.7
) -> list[Detection]:
    """Keeps the best box of each cluster: same-label boxes overlapping by ``overlap`` IoU, or any
    two boxes overlapping by ``across`` IoU (one object is not two labels at once)."""
    kept: list[Detection] = []
    for candidate in sorted(candidates, key=lambda d: -d.score):
        if all(iou(k.box, candidate.box) < (overlap if k.label == candidate.label else across) for k in kept):
            kept.append(candidate)
    return kept
