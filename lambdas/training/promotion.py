"""Promotion: the durable record of what is in production, and the failure report of a training.

The production record is written only after the new version passed the gate and, when the old
version was running, after the new one reached RUNNING (blue/green): detection switches to the
new ARN only once it can answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lambdas.common.production import DatasetSnapshot, ProductionRecord
from lambdas.training.state import TrainingStateStore


def build_record(
    *,
    project: str,
    version_arn: str,
    version_name: str,
    f1_score: float,
    snapshot: dict[str, Any] | None,
    previous_version_arn: str | None,
    execution_arn: str | None,
    now: datetime | None = None,
) -> ProductionRecord:
    return ProductionRecord(
        project=project,
        version_arn=version_arn,
        version_name=version_name,
        f1_score=float(f1_score),
        promoted_at=(now or datetime.now(UTC)).isoformat(),
        dataset_snapshot=DatasetSnapshot.from_dict(snapshot),
        previous_version_arn=previous_version_arn,
        execution_arn=execution_arn,
    )


def promote(store: TrainingStateStore, record: ProductionRecord) -> ProductionRecord:
    """Writes the record unless production changed since the gate looked (then raises)."""
    store.put_production(record, expected_previous_arn=record.previous_version_arn)
    return record


# --- failures ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FailureReport:
    error: str
    reason: str
    status_message: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"error": self.error, "reason": self.reason, "status_message": self.status_message}


def _lambda_error(cause: str) -> tuple[str, str] | None:
    """Lambda task causes are JSON: {"errorMessage": ..., "errorType": ...}."""
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        return None
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed.get("errorType") or "Error"), str(parsed["errorMessage"])
    return None


def _dataset_messages(split: dict[str, Any]) -> str:
    parts = []
    for kind in ("train", "test"):
        description = split.get(kind) or {}
        if description:
            status = description.get("Status", "UNKNOWN")
            message = description.get("StatusMessage") or "no message"
            parts.append(f"{kind.upper()} {status}: {message}")
    return "; ".join(parts)


def describe_failure(state: dict[str, Any]) -> FailureReport:
    """Turns the state at the failure into a reason a person can act on."""
    error_info = state.get("error") or {}
    error = str(error_info.get("Error") or "UNKNOWN")
    cause = str(error_info.get("Cause") or "")
    settings = state.get("settings") or {}
    version = (state.get("training") or {}).get("version") or {}
    started = (state.get("bluegreen") or {}).get("version") or {}
    if error == "TRAINING_FAILED":
        message = version.get("StatusMessage") or "no status message"
        return FailureReport(error, f"training failed: {message}", message)
    if error == "TRAINING_TIMEOUT":
        polls, seconds = settings.get("max_polls"), settings.get("poll_seconds")
        return FailureReport(
            error,
            f"training did not finish within {polls} status checks {seconds} s apart "
            f"(last status {version.get('Status', 'unknown')})",
            version.get("StatusMessage") or "",
        )
    if error == "SPLIT_FAILED":
        message = _dataset_messages(state.get("split") or {})
        return FailureReport(error, f"splitting TRAIN into TEST failed: {message}", message)
    if error == "SPLIT_TIMEOUT":
        return FailureReport(error, "splitting TRAIN into TEST did not complete in time", "")
    if error == "START_FAILED":
        message = started.get("StatusMessage") or "no status message"
        return FailureReport(error, f"the new version failed to start: {message}", message)
    if error == "START_TIMEOUT":
        return FailureReport(
            error,
            f"the new version did not reach RUNNING (last status {started.get('Status', 'unknown')})",
            "",
        )
    parsed = _lambda_error(cause)
    if parsed is not None:
        return FailureReport(parsed[0], parsed[1], "")
    return FailureReport(error, cause or error, cause)
