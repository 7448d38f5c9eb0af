"""The training workflow's Lambda steps besides the gate and the promotion, and the trigger's
use case: each takes its request model and its dependencies and returns its result model."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas.common.constants import EVENT_TRAINING_FAILED, EVENT_TRAINING_SKIPPED, EVENT_VERSION_DELETED
from lambdas.common.executions import ExecutionStarter
from lambdas.common.settings import AppSettings, UnknownProjectError
from lambdas.training import outputs as training_outputs
from lambdas.training import preflight as preflight_logic
from lambdas.training import retention
from lambdas.training.adapters import ManifestReader
from lambdas.training.contracts import (
    FailureResult,
    FinishRequest,
    FinishResult,
    PreflightOutput,
    PreflightRequest,
    RetentionRequest,
    RetentionResult,
)
from lambdas.training.promotion import describe_failure
from lambdas.training.rekognition import TrainingRekognition
from lambdas.training.state import TrainingStateStore
from lambdas.training.trigger import Publisher, TriggerRequest, request_training

logger = Logger(child=True)


def run_trigger(
    request: TriggerRequest,
    *,
    settings: AppSettings,
    store: TrainingStateStore,
    starter: ExecutionStarter,
    publisher: Publisher,
    rekognition: TrainingRekognition,
    manifests: ManifestReader | None = None,
) -> dict[str, Any]:
    """Decide, lock, start; a project missing from the settings is reported as skipped."""
    try:
        result = request_training(
            request,
            settings=settings,
            rekognition=rekognition,
            store=store,
            starter=starter,
            publisher=publisher,
            manifests=manifests,
        )
    except UnknownProjectError as error:
        logger.error("training requested for an unknown project", extra={"project": request.project})
        publisher.publish(EVENT_TRAINING_SKIPPED, request.project, reason=str(error), source=request.source)
        return {"project": request.project, "status": "SKIPPED", "reason": str(error)}
    logger.info("training trigger", extra=result.to_dict())
    return result.to_dict()


def run_preflight(request: PreflightRequest, *, rekognition: TrainingRekognition) -> PreflightOutput:
    train = rekognition.describe_dataset("TRAIN", request.train_dataset_arn)
    test = rekognition.describe_dataset("TEST", request.test_dataset_arn)
    result = preflight_logic.check(
        project=request.project,
        feature=request.feature or "CUSTOM_LABELS",
        train=train,
        test=test,
        train_labels=rekognition.list_labels(train.arn),
        test_labels=rekognition.list_labels(test.arn),
    )
    if not result.ok:
        logger.warning("preflight failed", extra={"project": request.project, "reason": result.reason})
        raise preflight_logic.PreflightError(f"preflight checks failed: {result.reason}")
    return PreflightOutput.model_validate(result.to_output())


def run_retention(
    request: RetentionRequest,
    *,
    rekognition: TrainingRekognition,
    store: TrainingStateStore,
    publisher: Publisher,
) -> RetentionResult:
    project = request.project
    production = store.get_production(project)
    plan = retention.plan(
        rekognition.list_versions(request.project_arn),
        retain=int(request.retain_versions),
        protected_arns=[production.version_arn if production else None, *request.protect],
    )
    deleted: list[str] = []
    for version in plan.delete:
        try:
            status = rekognition.delete_version(version.arn)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in {"ResourceInUseException", "ResourceNotFoundException"}:
                logger.warning("version not deleted", extra={"version_arn": version.arn, "code": code})
                continue
            raise
        deleted.append(version.arn)
        publisher.publish(
            EVENT_VERSION_DELETED, project, version_arn=version.arn, version_name=version.name, status=status
        )
    return RetentionResult(deleted=deleted, kept=[v.arn for v in plan.keep])


def run_finish(request: FinishRequest, *, store: TrainingStateStore, now: datetime) -> FinishResult:
    released = store.release_lock(
        request.project,
        token=request.lock_token,
        outcome=request.outcome,
        reason=str(request.reason or ""),
        now=now,
    )
    return FinishResult(released=released, outcome=request.outcome)


def run_failure(
    state: dict[str, Any],
    *,
    store: TrainingStateStore,
    publisher: Publisher,
    rekognition: TrainingRekognition,
    now: datetime,
) -> FailureResult:
    """Reports a failure from the whole state at it; never raises for the clean-up it can skip."""
    project = state["project"]
    report = describe_failure(state)
    validation: dict[str, Any] | None = None
    if report.error == "TRAINING_FAILED":
        explained = training_outputs.explain_training_failure(
            (state.get("training") or {}).get("version") or {}
        )
        if not explained.empty or explained.unavailable:
            validation = explained.to_dict()
        if not explained.empty:
            report = report.model_copy(update={"reason": f"{report.reason} ({explained.sentence()})"})
    started = (state.get("created") or {}).get("ProjectVersionArn") if state.get("bluegreen") else None
    if started and not state.get("promotion"):
        try:
            rekognition.stop_version(started)
        except ClientError as error:
            logger.warning(
                "could not stop the unpromoted version", extra={"version_arn": started, "error": str(error)}
            )
    publisher.publish(
        EVENT_TRAINING_FAILED,
        project,
        version_name=state.get("version_name"),
        version_arn=(state.get("created") or {}).get("ProjectVersionArn"),
        execution_arn=(state.get("execution") or {}).get("arn"),
        validation=validation,
        **report.to_dict(),
    )
    released = store.release_lock(
        project, token=state["lock_token"], outcome="FAILED", reason=report.reason, now=now
    )
    logger.error("training failed", extra={"project": project, **report.to_dict()})
    return FailureResult(**report.to_dict(), released=released)


def run_execution_end(
    detail: dict[str, Any], *, store: TrainingStateStore, publisher: Publisher, now: datetime
) -> dict[str, Any]:
    """Releases the lock of an execution that ended without its own clean-up (timeout, abort)."""
    status = str(detail.get("status") or "")
    try:
        payload = json.loads(detail.get("input") or "{}")
    except ValueError:
        payload = {}
    project, token = payload.get("project"), payload.get("lock_token")
    if not project or not token:
        logger.warning("execution without a training lock in its input", extra={"status": status})
        return {"released": False}
    reason = f"the training workflow ended {status} without finishing (execution {detail.get('name')})"
    released = store.release_lock(project, token=token, outcome="FAILED", reason=reason, now=now)
    if released:
        publisher.publish(
            EVENT_TRAINING_FAILED,
            project,
            error=f"EXECUTION_{status}",
            reason=reason,
            status_message=str(detail.get("cause") or detail.get("error") or ""),
            version_name=payload.get("version_name"),
            execution_arn=detail.get("executionArn"),
        )
    return {"released": released, "status": status}
