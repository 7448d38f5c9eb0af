"""The evaluation gate: a new version is promoted only if it is good enough and better than production.

Promote when F1 >= f1_floor and, if a version is in production, F1 >= production F1 + margin
and F1 > production F1 (a margin of 0 still demands a strict improvement), and every label passes
the per-label rules (`check_labels`): its F1 reaches its `label_f1_floors` entry, and it fell no
more than `max_label_f1_drop` below the production version's F1 for the same label.

Per-label figures come from the evaluation summary file (EvaluationResult.Summary, its
`LabelEvaluationResults`). Each version was evaluated on its own TEST set; `evaluation_set_digest` tells
whether two versions' tested manifests hold the same images and labels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from lambdas.common.production import ProductionRecord

PROMOTE = "PROMOTE"
REJECT = "REJECT"
_TOLERANCE = 1e-9  # F1 scores are floats: 0.83 - 0.82 must count as a 0.01 improvement


@dataclass(frozen=True)
class LabelScore:
    """One entry of LabelEvaluationResults."""

    label: str
    f1: float
    precision: float | None = None
    recall: float | None = None
    threshold: float | None = None
    test_images: int | None = None


@dataclass(frozen=True)
class LabelFailure:
    label: str
    reason: str
    f1: float | None
    floor: float | None = None
    production_f1: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateDecision:
    decision: str
    reason: str
    f1_score: float | None
    production_f1: float | None = None
    label_failures: tuple[LabelFailure, ...] = field(default_factory=tuple)

    @property
    def promote(self) -> bool:
        return self.decision == PROMOTE


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def label_scores(summary: dict[str, Any]) -> dict[str, LabelScore]:
    """Per-label figures of an evaluation summary file; a malformed file is named as such."""
    results = summary.get("LabelEvaluationResults")
    if not isinstance(results, list):
        raise ValueError("the evaluation summary has no LabelEvaluationResults list")
    scores = {}
    for entry in results:
        metrics = entry.get("Metrics") or {}
        f1 = _number(metrics.get("F1Score"))
        if not isinstance(entry.get("Label"), str) or f1 is None:
            raise ValueError(
                f"the evaluation summary holds a malformed label result: {json.dumps(entry)[:200]}"
            )
        images = entry.get("NumberOfTestingImages")
        scores[entry["Label"]] = LabelScore(
            label=entry["Label"],
            f1=f1,
            precision=_number(metrics.get("Precision")),
            recall=_number(metrics.get("Recall")),
            threshold=_number(metrics.get("Threshold")),
            test_images=int(images) if isinstance(images, int) else None,
        )
    return scores


def check_labels(
    new: dict[str, LabelScore],
    production: dict[str, LabelScore] | None,
    *,
    floors: dict[str, float],
    max_drop: float | None,
) -> list[LabelFailure]:
    """Every label that fails a per-label rule, with why (labels in name order, floors first)."""
    failures: list[LabelFailure] = []
    for label, floor in sorted(floors.items()):
        score = new.get(label)
        if score is None:
            failures.append(
                LabelFailure(
                    label, f"label {label!r} has no evaluation result (is it in the TEST set?)", None, floor
                )
            )
        elif score.f1 + _TOLERANCE < floor:
            failures.append(
                LabelFailure(
                    label,
                    f"label {label!r} F1 {score.f1:.4f} is below its floor {floor:.4f}",
                    score.f1,
                    floor,
                )
            )
    if max_drop is not None and production:
        for label in sorted(set(production) & set(new)):
            before, after = production[label].f1, new[label].f1
            if before - after > max_drop + _TOLERANCE:
                failures.append(
                    LabelFailure(
                        label,
                        f"label {label!r} F1 fell from {before:.4f} to {after:.4f} "
                        f"(drop {before - after:.4f} > max_label_f1_drop {max_drop:.4f})",
                        after,
                        floors.get(label),
                        before,
                    )
                )
    return failures


def apply_label_rules(decision: GateDecision, failures: list[LabelFailure]) -> GateDecision:
    """The aggregate decision, turned into a rejection when any label failed (every failure listed)."""
    if not failures:
        return decision
    labels = "; ".join(failure.reason for failure in failures)
    if decision.promote:
        return GateDecision(
            REJECT,
            f"{len(failures)} label(s) failed the per-label gate: {labels}",
            decision.f1_score,
            decision.production_f1,
            tuple(failures),
        )
    return GateDecision(
        decision.decision,
        f"{decision.reason}; per-label gate: {labels}",
        decision.f1_score,
        decision.production_f1,
        tuple(failures),
    )


def label_table(new: dict[str, LabelScore], production: dict[str, LabelScore] | None) -> list[dict[str, Any]]:
    """Per-label figures of the new version next to production's, for events and reports."""
    rows = []
    for label in sorted(set(new) | set(production or {})):
        score = new.get(label)
        before = (production or {}).get(label)
        rows.append(
            {
                "label": label,
                "f1": score.f1 if score else None,
                "precision": score.precision if score else None,
                "recall": score.recall if score else None,
                "threshold": score.threshold if score else None,
                "test_images": score.test_images if score else None,
                "production_f1": before.f1 if before else None,
            }
        )
    return rows


EVALUATION_ATTRIBUTE_PREFIX = "rekognition-custom-labels-evaluation"


def evaluation_set_digest(lines: Iterable[str]) -> tuple[str, int]:
    """(digest, line count) of a tested manifest: the images and their labels, in any order.

    Metadata (dates, job names, confidences), validation errors and the model's own judged
    predictions (the `rekognition-custom-labels-evaluation*` attributes of the testing manifest
    snapshot, Developer Guide "Evaluation manifest snapshot") are left out, so two trainings on the
    same TEST dataset snapshot give the same digest.
    """
    canonical = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        entry = {
            key: value
            for key, value in json.loads(line).items()
            if not key.startswith(EVALUATION_ATTRIBUTE_PREFIX)
        }
        kept = {
            key: value for key, value in entry.items() if key != "errors" and not key.endswith("-metadata")
        }
        for key, value in entry.items():
            if key.endswith("-metadata") and isinstance(value, dict):
                kept[key] = {k: value[k] for k in ("class-name", "class-map") if k in value}
        canonical.append(json.dumps(kept, sort_keys=True))
    digest = hashlib.sha256("\n".join(sorted(canonical)).encode()).hexdigest()
    return digest, len(canonical)


def evaluate(
    f1_score: float | None, *, production: ProductionRecord | None, f1_floor: float, margin: float
) -> GateDecision:
    if f1_score is None:
        return GateDecision(REJECT, "the training reported no F1 score", None)
    if f1_score + _TOLERANCE < f1_floor:
        return GateDecision(REJECT, f"F1 {f1_score:.4f} is below the floor {f1_floor:.4f}", f1_score)
    if production is None:
        return GateDecision(
            PROMOTE, f"F1 {f1_score:.4f} meets the floor {f1_floor:.4f}; no version in production", f1_score
        )
    required = production.f1_score + margin
    if f1_score <= production.f1_score or f1_score + _TOLERANCE < required:
        return GateDecision(
            REJECT,
            f"F1 {f1_score:.4f} does not beat production {production.version_name} "
            f"(F1 {production.f1_score:.4f}) by the margin {margin:.4f}",
            f1_score,
            production.f1_score,
        )
    return GateDecision(
        PROMOTE,
        f"F1 {f1_score:.4f} beats production {production.version_name} (F1 {production.f1_score:.4f}) "
        f"by {f1_score - production.f1_score:.4f} (margin {margin:.4f})",
        f1_score,
        production.f1_score,
    )


def production_summary(production: ProductionRecord | None, status: str | None) -> dict[str, Any] | None:
    if production is None:
        return None
    return {
        "version_arn": production.version_arn,
        "version_name": production.version_name,
        "f1_score": production.f1_score,
        "status": status or "UNKNOWN",
    }
