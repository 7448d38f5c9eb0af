"""The testing manifest snapshot with the model's evaluation (Developer Guide, "Evaluation
manifest snapshot"): each test line keeps its ground truth and gains the model's predictions,
each marked true/false positive or negative against the label's assumed threshold.

Classification: one `rekognition-custom-labels-evaluation-<i>` attribute per label that is
predicted (score at or above its threshold) or present in the ground truth, with its
`-metadata` (class-name, confidence 0..1, evaluation details). Detection: one
`rekognition-custom-labels-evaluation` bounding-box attribute whose objects are the predicted
boxes (true or false positives) followed by the ground-truth boxes no prediction matched (false
negatives, confidence 0) - the Guide shows predicted objects only and does not say how missed
boxes appear; see docs/engine.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from autopilot.engine.manifests import Entry

EVALUATION_JOB = "rekognition-custom-labels-evaluation-job"
TRAINING_JOB = "rekognition-custom-labels-training-job"
CLASSIFICATION_TYPE = "groundtruth/image-classification"
DETECTION_TYPE = "groundtruth/object-detection"


@dataclass(frozen=True)
class Judged:
    """One prediction (or one missed ground-truth label/box) of one test image."""

    label: str
    confidence: float  # 0..1
    outcome: str  # TP | FP | FN
    box: tuple[float, float, float, float] | None = None  # ratios: left, top, width, height


@dataclass
class ImageEvaluation:
    width: int
    height: int
    judged: list[Judged] = field(default_factory=list)
    top_label: str | None = None  # classification: the label with the highest score


def _details(outcome: str) -> dict[str, Any]:
    return {
        "version": 1,
        "ground-truth-labelling-jobs": [TRAINING_JOB],
        "is-true-positive": outcome == "TP",
        "is-true-negative": False,
        "is-false-positive": outcome == "FP",
        "is-false-negative": outcome == "FN",
        "is-present-in-ground-truth": outcome in ("TP", "FN"),
    }


def snapshot_line(entry: Entry, evaluation: ImageEvaluation | None, created: str) -> dict[str, Any]:
    line = dict(entry.line)
    if evaluation is None:  # the image could not be used (see the manifest summary)
        return line
    if not entry.is_detection:
        for index, judged in enumerate(evaluation.judged):
            name = f"rekognition-custom-labels-evaluation-{index}"
            line[name] = 1
            line[f"{name}-metadata"] = {
                "confidence": round(judged.confidence, 6),
                "job-name": EVALUATION_JOB,
                "class-name": judged.label,
                "human-annotated": "no",
                "creation-date": created,
                "type": CLASSIFICATION_TYPE,
                "rekognition-custom-labels-evaluation-details": _details(judged.outcome),
            }
        return line
    class_ids = {label: str(i) for i, label in enumerate(sorted({j.label for j in evaluation.judged}))}
    annotations: list[dict[str, Any]] = []
    objects: list[dict[str, Any]] = []
    for judged in evaluation.judged:
        left, top, width, height = judged.box or (0.0, 0.0, 0.0, 0.0)
        annotations.append(
            {
                "class_id": int(class_ids[judged.label]),
                "left": round(left * evaluation.width),
                "top": round(top * evaluation.height),
                "width": round(width * evaluation.width),
                "height": round(height * evaluation.height),
            }
        )
        objects.append(
            {
                "confidence": round(judged.confidence, 6),
                "rekognition-custom-labels-evaluation-details": _details(judged.outcome),
            }
        )
    line["rekognition-custom-labels-evaluation"] = {
        "annotations": annotations,
        "image_size": [{"width": evaluation.width, "height": evaluation.height, "depth": 3}],
    }
    line["rekognition-custom-labels-evaluation-metadata"] = {
        "confidence": round(max((j.confidence for j in evaluation.judged), default=0.0), 6),
        "job-name": EVALUATION_JOB,
        "class-map": {index: label for label, index in class_ids.items()},
        "human-annotated": "no",
        "objects": objects,
        "creation-date": created,
        "type": DETECTION_TYPE,
    }
    return line


def snapshot_blob(entries: list[Entry], evaluations: dict[str, ImageEvaluation], created: str) -> bytes:
    lines = [
        json.dumps(snapshot_line(entry, evaluations.get(entry.source_ref), created), separators=(",", ":"))
        for entry in entries
    ]
    return ("\n".join(lines) + "\n").encode()
