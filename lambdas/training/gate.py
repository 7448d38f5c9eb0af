"""The evaluation gate: a new version is promoted only if it is good enough and better than production.

Promote when F1 >= f1_floor and, if a version is in production, F1 >= production F1 + margin
and F1 > production F1 (a margin of 0 still demands a strict improvement).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdas.common.production import ProductionRecord

PROMOTE = "PROMOTE"
REJECT = "REJECT"
_TOLERANCE = 1e-9  # F1 scores are floats: 0.83 - 0.82 must count as a 0.01 improvement


@dataclass(frozen=True)
class GateDecision:
    decision: str
    reason: str
    f1_score: float | None
    production_f1: float | None = None

    @property
    def promote(self) -> bool:
        return self.decision == PROMOTE


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
