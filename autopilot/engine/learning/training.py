"""Training pipeline: entries -> images from S3 -> model -> evaluation on the TEST entries."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from autopilot.engine.images import check_image
from autopilot.engine.learning.classifier import ImageClassifier
from autopilot.engine.learning.detector import Detection, WindowDetector, iou
from autopilot.engine.learning.evaluation import LabelMetrics, average_precision, best_threshold, macro_f1
from autopilot.engine.learning.features import describe
from autopilot.engine.learning.snapshot import ImageEvaluation, Judged
from autopilot.engine.manifests import Entry, split_s3_uri

LOG = logging.getLogger("autopilot.engine.training")

CLASSIFICATION = "classification"
DETECTION = "detection"
MIN_TEST_OVERLAP = 0.5


class TrainingFailure(Exception):
    """Training cannot produce a model; the message becomes the version's StatusMessage."""


# Training stops when more than this share of a manifest's JSON lines is invalid (Developer Guide,
# "Understanding training and testing validation result manifests": ignored lines do not count).
MAX_INVALID_SHARE = 0.2
TOO_MANY_INVALID_ROWS = "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST"


class TooManyInvalidLines(TrainingFailure):
    """A terminal manifest content error: the validation results are still written."""

    def __init__(self, message: str, skipped: dict[str, str], failed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.skipped = skipped  # source-ref -> "CODE: message"
        self.failed = failed  # "training" and/or "testing"


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float  # 0..100
    box: tuple[float, float, float, float] | None = None


@dataclass
class TrainedModel:
    kind: str
    labels: list[str]
    thresholds: dict[str, float]  # 0..1
    classifier: ImageClassifier | None = None
    detector: WindowDetector | None = None

    def predict(self, rgb: np.ndarray) -> list[Prediction]:
        if self.kind == CLASSIFICATION:
            assert self.classifier is not None
            proba = self.classifier.predict_proba(describe(rgb)[None, :])[0]
            order = np.argsort(-proba, kind="stable")
            return [Prediction(self.labels[i], round(float(proba[i]) * 100, 3)) for i in order]
        assert self.detector is not None
        return [
            Prediction(d.label, round(d.score * 100, 3), d.box)
            for d in self.detector.detect(rgb, min_score=0.01)
        ]


@dataclass
class TrainingReport:
    model: TrainedModel
    f1: float
    label_metrics: list[LabelMetrics]
    training_images: int
    testing_images: int
    skipped: dict[str, str] = field(default_factory=dict)  # source-ref -> reason
    # Classification: rows of the confusion matrix (share of each true label's images per top label).
    confusion: list[dict[str, object]] = field(default_factory=list)
    # Detection: mean average precision and mean average recall over labels (IoU 0.5).
    average_precision: float | None = None
    average_recall: float | None = None
    # Per test image (source-ref): predictions judged against the assumed thresholds, for the
    # testing manifest snapshot.
    evaluations: dict[str, ImageEvaluation] = field(default_factory=dict)


Fetch = Callable[[str, str], bytes]


def _load(entries: list[Entry], fetch: Fetch, skipped: dict[str, str]) -> list[tuple[Entry, np.ndarray]]:
    def one(entry: Entry) -> tuple[Entry, np.ndarray | None]:
        bucket, key = split_s3_uri(entry.source_ref)
        try:
            data = fetch(bucket, key)
        except Exception as exc:  # any S3 failure excludes the image, with its reason
            skipped[entry.source_ref] = f"ERROR_INVALID_IMAGE: The image cannot be read from S3: {exc}"
            return entry, None
        array, problem = check_image(data, inline=False)
        if problem is not None:
            skipped[entry.source_ref] = f"{problem.code}: {problem.message}"
        return entry, array

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, entries))
    return [(entry, array) for entry, array in results if array is not None]


def train(
    train_entries: list[Entry], test_entries: list[Entry], fetch: Fetch, seed: int = 7
) -> TrainingReport:
    train_labeled = [e for e in train_entries if e.labeled]
    test_labeled = [e for e in test_entries if e.labeled]
    if not train_labeled:
        raise TrainingFailure("The training dataset has no labeled images.")
    if not test_labeled:
        raise TrainingFailure("The test dataset has no labeled images.")
    buckets = {split_s3_uri(e.source_ref)[0] for e in train_labeled + test_labeled}
    if len(buckets) > 1:
        raise TrainingFailure(f"All images must be in one S3 bucket; found {sorted(buckets)}.")
    detection = any(e.is_detection for e in train_labeled)
    labels = sorted(
        {
            label
            for e in train_labeled
            for label in (e.labels if not detection else [b.label for b in e.boxes])
        }
    )
    if detection and not labels:
        raise TrainingFailure("The training dataset has no valid bounding boxes.")
    if not detection and len(labels) < 2:
        raise TrainingFailure(
            f"Classification needs at least 2 labels in the training dataset; found {labels}."
        )
    test_labels = {label for e in test_labeled for label in e.labels}
    if test_labels and len(test_labels & set(labels)) / len(test_labels) < MIN_TEST_OVERLAP:
        raise TrainingFailure(
            "At least 50% of the test dataset's labels must also be in the training dataset; "
            f"training has {labels}, test has {sorted(test_labels)}."
        )
    skipped: dict[str, str] = {}
    started = time.monotonic()
    train_images = _load(train_labeled, fetch, skipped)
    test_images = _load(test_labeled, fetch, skipped)
    LOG.info(
        "read %d training and %d test images (%d skipped) in %.1f s",
        len(train_images),
        len(test_images),
        len(skipped),
        time.monotonic() - started,
    )
    failed = tuple(
        name
        for name, labeled in (("training", train_labeled), ("testing", test_labeled))
        if sum(1 for e in labeled if e.source_ref in skipped) > MAX_INVALID_SHARE * len(labeled)
    )
    if failed:
        raise TooManyInvalidLines(
            f"The {' and '.join(failed)} manifest file contains too many invalid rows "
            f"({TOO_MANY_INVALID_ROWS}); see the manifest summary and the validation manifests.",
            skipped,
            failed,
        )
    if not train_images:
        raise TrainingFailure(
            "None of the training images could be used: " + "; ".join(list(skipped.values())[:3])
        )
    if not test_images:
        raise TrainingFailure(
            "None of the test images could be used: " + "; ".join(list(skipped.values())[:3])
        )
    if detection:
        return _train_detector(labels, train_images, test_images, skipped, seed)
    return _train_classifier(labels, train_images, test_images, skipped)


def _train_classifier(
    labels: list[str],
    train_images: list[tuple[Entry, np.ndarray]],
    test_images: list[tuple[Entry, np.ndarray]],
    skipped: dict[str, str],
) -> TrainingReport:
    index = {label: i for i, label in enumerate(labels)}

    def targets(items: list[tuple[Entry, np.ndarray]]) -> np.ndarray:
        y = np.zeros((len(items), len(labels)))
        for row, (entry, _) in enumerate(items):
            for label in entry.labels:
                if label in index:
                    y[row, index[label]] = 1
        return y

    y_train = targets(train_images)
    present = y_train.sum(axis=0) > 0
    if present.sum() < 2:
        raise TrainingFailure("Classification needs at least 2 labels with usable training images.")
    exclusive = bool(np.all(y_train.sum(axis=1) == 1))
    x_train = np.stack([describe(rgb) for _, rgb in train_images])
    classifier = ImageClassifier(labels, exclusive).fit(x_train, y_train)
    x_test = np.stack([describe(rgb) for _, rgb in test_images])
    y_test = targets(test_images)
    proba = classifier.predict_proba(x_test)
    metrics: list[LabelMetrics] = []
    for column, label in enumerate(labels):
        truth = y_test[:, column] > 0
        threshold, precision, recall, f1 = best_threshold(proba[:, column], truth, int(truth.sum()))
        metrics.append(LabelMetrics(label, threshold, precision, recall, f1, int(truth.sum())))
    evaluated = [m for m in metrics if m.test_images > 0]
    model = TrainedModel(
        CLASSIFICATION, labels, {m.label: m.threshold for m in metrics}, classifier=classifier
    )
    report = TrainingReport(model, macro_f1(evaluated), metrics, len(train_images), len(test_images), skipped)
    top = proba.argmax(axis=1)
    for row, (entry, rgb) in enumerate(test_images):
        present = set(entry.labels)
        judged = []
        for column, label in enumerate(labels):
            score = float(proba[row, column])
            predicted = score >= metrics[column].threshold
            if predicted or label in present:
                outcome = "TP" if predicted and label in present else "FP" if predicted else "FN"
                judged.append(Judged(label, score, outcome))
        report.evaluations[entry.source_ref] = ImageEvaluation(
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
            judged=sorted(judged, key=lambda j: -j.confidence),
            top_label=labels[int(top[row])],
        )
    for column, label in enumerate(labels):
        rows = y_test[:, column] > 0
        if not rows.any():
            continue
        counts = np.bincount(top[rows], minlength=len(labels)) / float(rows.sum())
        report.confusion.extend(
            {"GroundTruthLabel": label, "PredictedLabel": labels[predicted], "Value": round(float(share), 6)}
            for predicted, share in enumerate(counts)
            if share > 0
        )
    return report


def _train_detector(
    labels: list[str],
    train_images: list[tuple[Entry, np.ndarray]],
    test_images: list[tuple[Entry, np.ndarray]],
    skipped: dict[str, str],
    seed: int,
) -> TrainingReport:
    detector = WindowDetector(labels, seed=seed)
    detector.fit([(rgb, [(b.label, b.ratios()) for b in entry.boxes]) for entry, rgb in train_images])
    per_label_scores: dict[str, list[float]] = {label: [] for label in labels}
    per_label_hits: dict[str, list[bool]] = {label: [] for label in labels}
    per_label_truth: dict[str, int] = dict.fromkeys(labels, 0)
    per_label_images: dict[str, int] = dict.fromkeys(labels, 0)
    found: list[list[Detection]] = []
    for entry, rgb in test_images:
        detections: list[Detection] = detector.detect(rgb, min_score=0.01)
        found.append(detections)
        for label in labels:
            truth = [b.ratios() for b in entry.boxes if b.label == label]
            per_label_truth[label] += len(truth)
            per_label_images[label] += 1 if truth else 0
            matched = [False] * len(truth)
            for detection in sorted((d for d in detections if d.label == label), key=lambda d: -d.score):
                best, best_iou = -1, 0.5
                for i, box in enumerate(truth):
                    overlap = iou(detection.box, box)
                    if not matched[i] and overlap >= best_iou:
                        best, best_iou = i, overlap
                if best >= 0:
                    matched[best] = True
                per_label_scores[label].append(detection.score)
                per_label_hits[label].append(best >= 0)
    metrics: list[LabelMetrics] = []
    for label in labels:
        threshold, precision, recall, f1 = best_threshold(
            np.array(per_label_scores[label]),
            np.array(per_label_hits[label], dtype=bool),
            per_label_truth[label],
        )
        metrics.append(LabelMetrics(label, threshold, precision, recall, f1, per_label_images[label]))
    evaluated = [m for m in metrics if m.test_images > 0]
    model = TrainedModel(DETECTION, labels, {m.label: m.threshold for m in metrics}, detector=detector)
    report = TrainingReport(model, macro_f1(evaluated), metrics, len(train_images), len(test_images), skipped)
    thresholds = {m.label: m.threshold for m in metrics}
    for (entry, rgb), detections in zip(test_images, found, strict=True):
        report.evaluations[entry.source_ref] = _judge_boxes(entry, rgb, detections, thresholds)
    curves = [
        average_precision(
            np.array(per_label_scores[m.label]),
            np.array(per_label_hits[m.label], dtype=bool),
            per_label_truth[m.label],
        )
        for m in evaluated
    ]
    if curves:
        report.average_precision = float(np.mean([ap for ap, _ in curves]))
        report.average_recall = float(np.mean([ar for _, ar in curves]))
    return report


def _judge_boxes(
    entry: Entry, rgb: np.ndarray, detections: list[Detection], thresholds: dict[str, float]
) -> ImageEvaluation:
    """Kept detections (at or above their label's threshold) matched greedily to the ground-truth
    boxes at IoU >= 0.5: matched ones are true positives, the rest false positives; ground-truth
    boxes left unmatched are false negatives."""
    truth = [(b.label, b.ratios()) for b in entry.boxes]
    matched = [False] * len(truth)
    judged: list[Judged] = []
    kept = sorted((d for d in detections if d.score >= thresholds.get(d.label, 1.0)), key=lambda d: -d.score)
    for detection in kept:
        best, best_iou = -1, 0.5
        for i, (label, box) in enumerate(truth):
            overlap = iou(detection.box, box)
            if not matched[i] and label == detection.label and overlap >= best_iou:
                best, best_iou = i, overlap
        if best >= 0:
            matched[best] = True
        judged.append(Judged(detection.label, detection.score, "TP" if best >= 0 else "FP", detection.box))
    judged += [
        Judged(label, 0.0, "FN", box) for (label, box), hit in zip(truth, matched, strict=True) if not hit
    ]
    return ImageEvaluation(width=int(rgb.shape[1]), height=int(rgb.shape[0]), judged=judged)
