"""Per-label metrics and assumed thresholds, chosen on the TEST set as the service does."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelMetrics:
    label: str
    threshold: float  # 0..1
    precision: float
    recall: float
    f1: float
    test_images: int


def best_threshold(
    scores: np.ndarray, positives: np.ndarray, total_positives: int
) -> tuple[float, float, float, float]:
    """Threshold maximising F1 for one label.

    ``scores`` are the candidate predictions' confidences (0..1), ``positives`` whether each one
    is correct, ``total_positives`` how many ground-truth instances exist. Returns
    (threshold, precision, recall, f1); predictions scoring at least the threshold count.
    """
    if total_positives == 0 or scores.size == 0:
        return 0.5, 0.0, 0.0, 0.0
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    hits = np.cumsum(positives[order].astype(np.float64))
    predicted = np.arange(1, scores.size + 1, dtype=np.float64)
    precision = hits / predicted
    recall = hits / float(total_positives)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    # Only cut between distinct scores: the threshold keeps every prediction >= it.
    last_of_group = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    f1 = np.where(last_of_group, f1, -1.0)
    best = int(np.argmax(f1))
    # Any threshold between the last kept score and the next lower one gives the same F1 on the
    # test set; the midpoint generalises best to new images.
    lower = float(sorted_scores[best + 1]) if best + 1 < scores.size else 0.0
    threshold = (float(sorted_scores[best]) + lower) / 2
    return threshold, float(precision[best]), float(recall[best]), float(max(f1[best], 0.0))


def macro_f1(metrics: list[LabelMetrics]) -> float:
    return float(np.mean([m.f1 for m in metrics])) if metrics else 0.0


def average_precision(scores: np.ndarray, positives: np.ndarray, total_positives: int) -> tuple[float, float]:
    """Area under the precision-recall curve (all points, precision made monotone) and the highest recall."""
    if total_positives == 0 or scores.size == 0:
        return 0.0, 0.0
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(positives[order].astype(np.float64))
    precision = hits / np.arange(1, scores.size + 1)
    recall = hits / float(total_positives)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope)), float(recall[-1])
