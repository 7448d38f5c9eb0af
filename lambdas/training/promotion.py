"""Promotion: the durable record of what is in production, and the failure report of a training.

The production record is written only after the new version passed the gate and, when the old
version was running, after the new one reached RUNNING (blue/green): detection switches to the
new ARN only once it can answer. `promote` is the one path that writes it, for the training
workflow and for the operator's `autopilot promote` / `rollback` alike, and publishes the one
version.promoted event.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from lambdas.common import clock
from lambdas.common.constants import EVENT_VERSION_PROMOTED
from lambdas.common.production import DatasetSnapshot, ProductionRecord
from lambdas.training.contracts import FailureReport, PromoteRequest, PromoteResult
from lambdas.training.state import TrainingStateStore
from lambdas.training.trigger import Publisher

__all__ = ["FailureReport", "build_record", "describe_failure", "promote", "run_promote"]


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
        promoted_at=(now or clock.utcnow()).isoformat(),
        dataset_snapshot=DatasetSnapshot.from_dict(snapshot),
        previous_version_arn=previous_version_arn,
        execution_arn=execution_arn,
    )


def promote(
    store: TrainingStateStore,
    record: ProductionRecord,
    publisher: Publisher,
    *,
    previous_f1_score: float | None,
    reason: str | None,
) -> ProductionRecord:
    """Writes the record unless production changed since the caller looked (then raises
    ProductionChangedError), and publishes version.promoted."""
    store.put_production(record, expected_previous_arn=record.previous_version_arn)
    publisher.publish(
        EVENT_VERSION_PROMOTED,
        record.project,
        version_arn=record.version_arn,
        version_name=record.version_name,
        f1_score=record.f1_score,
        previous_version_arn=record.previous_version_arn,
        previous_f1_score=previous_f1_score,
        dataset_snapshot=record.dataset_snapshot.to_dict(),
        reason=reason,
    )
    return record


def run_promote(request: PromoteRequest, *, store: TrainingStateStore, publisher: Publisher) -> PromoteResult:
    """The workflow's promotion step, after the gate (and the blue/green start)."""
    production = request.production
    record = build_record(
        project=request.project,
        version_arn=request.version_arn,
        version_name=request.version_name,
        f1_score=request.f1_score,
        snapshot=request.snapshot,
        previous_version_arn=production.version_arn if production else None,
        execution_arn=request.execution_arn,
    )
    promote(
        store,
        record,
        publisher,
        previous_f1_score=production.f1_score if production else None,
        reason=request.reason,
    )
    return PromoteResult(version_arn=record.version_arn, promoted_at=record.promoted_at)


# --- failures ---------------------------------------------------------------------------------


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
        return FailureReport(error=error, reason=f"training failed: {message}", status_message=message)
    if error == "TRAINING_TIMEOUT":
        polls, seconds = settings.get("max_polls"), settings.get("poll_seconds")
        return FailureReport(
            error=error,
            reason=f"training did not finish within {polls} status checks {seconds} s apart "
            f"(last status {version.get('Status', 'unknown')})",
            status_message=version.get("StatusMessage") or "",
        )
    if error == "SPLIT_FAILED":
        message = _dataset_messages(state.get("split") or {})
        return FailureReport(
            error=error, reason=f"splitting TRAIN into TEST failed: {message}", status_message=message
        )
    if error == "SPLIT_TIMEOUT":
        return FailureReport(error=error, reason="splitting TRAIN into TEST did not complete in time")
    if error == "START_FAILED":
        message = started.get("StatusMessage") or "no status message"
        return FailureReport(
            error=error, reason=f"the new version failed to start: {message}", status_message=message
        )
    if error == "START_TIMEOUT":
        return FailureReport(
            error=error,
            reason=f"the new version did not reach RUNNING (last status {started.get('Status', 'unknown')})",
        )
    parsed = _lambda_error(cause)
    if parsed is not None:
        return FailureReport(error=parsed[0], reason=parsed[1])
    return FailureReport(error=error, reason=cause or error, status_message=cause)
