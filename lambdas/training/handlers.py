"""Thin Lambda handlers of the training workflow: parse the event, call the domain, shape the result.

trigger        schedule / on-demand event -> decide, lock, start the state machine
preflight      state machine: ListDatasetLabels checks, version description, dataset snapshot
gate           state machine: evaluation gate against the production record
promote        state machine: durable production record (after blue/green start if any)
retention      state machine: delete old versions beyond the configured count
finish         state machine: release the lock with the outcome (success paths)
failure        state machine: report a failure, stop an unpromoted new version, release the lock
execution_end  EventBridge "Step Functions Execution Status Change": backstop for timed-out or
               aborted executions (releases a lock left behind and reports it)
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any, Self

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.common.config import load_settings
from lambdas.common.constants import (
    DETAIL_TYPE_TRAIN_REQUESTED,
    ENV_LIFECYCLE_TOPIC,
    ENV_SETTINGS_PARAMETER,
    ENV_STATE_TABLE,
    ENV_TRAINING_STATE_MACHINE,
    EVENT_TRAINING_COMPLETED,
    EVENT_TRAINING_FAILED,
    EVENT_TRAINING_SKIPPED,
    EVENT_VERSION_DELETED,
    EVENT_VERSION_PROMOTED,
    EVENT_VERSION_REJECTED,
)
from lambdas.common.events import LifecyclePublisher
from lambdas.common.settings import UnknownProjectError
from lambdas.training import gate as gate_logic
from lambdas.training import outputs as training_outputs
from lambdas.training import preflight as preflight_logic
from lambdas.training import promotion, retention
from lambdas.training.outputs import TrainingOutputs
from lambdas.training.rekognition import TrainingRekognition, version_info
from lambdas.training.state import TrainingStateStore
from lambdas.training.trigger import ExecutionStarter, TriggerRequest, request_training

logger = Logger()


class TrainingEnvironment(BaseModel):
    """Environment of every training function; a missing or malformed variable is named at once."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    state_table: str = Field(alias=ENV_STATE_TABLE, min_length=3)
    lifecycle_topic_arn: str = Field(alias=ENV_LIFECYCLE_TOPIC, pattern=r"^arn:")

    @classmethod
    def from_environ(cls) -> Self:
        return cls.model_validate(dict(os.environ))


class TriggerEnvironment(TrainingEnvironment):
    """The trigger also reads the settings and starts the state machine."""

    settings_parameter: str = Field(alias=ENV_SETTINGS_PARAMETER, min_length=1)
    state_machine_arn: str = Field(alias=ENV_TRAINING_STATE_MACHINE, pattern=r"^arn:")


def _publisher(env: TrainingEnvironment | None = None) -> LifecyclePublisher:
    return LifecyclePublisher((env or TrainingEnvironment.from_environ()).lifecycle_topic_arn)


def _store(env: TrainingEnvironment | None = None) -> TrainingStateStore:
    return TrainingStateStore((env or TrainingEnvironment.from_environ()).state_table)


def _now() -> datetime:
    return datetime.now(UTC)


# --- trigger ------------------------------------------------------------------------------------
class _TriggerInput(BaseModel):
    project: str = Field(min_length=1)
    force: bool = False


def parse_trigger_event(event: dict[str, Any]) -> TriggerRequest:
    """Scheduler sends {"project": ..., "force": ...}; on-demand requests arrive as EventBridge events."""
    if "detail-type" in event:
        bridge = EventBridgeEvent(event)
        if bridge.detail_type != DETAIL_TYPE_TRAIN_REQUESTED:
            raise ValueError(
                f"unexpected detail-type {bridge.detail_type!r}; expected {DETAIL_TYPE_TRAIN_REQUESTED!r}"
            )
        raw, source = dict(bridge.detail or {}), "on-demand"
    else:
        raw, source = dict(event), str(event.get("source") or "schedule")
    try:
        parsed = _TriggerInput.model_validate(
            {"project": raw.get("project"), "force": raw.get("force", False)}
        )
    except ValidationError as error:
        raise ValueError(
            f"training request {json.dumps(raw)[:300]} is invalid: "
            'send {"project": "<name>", "force": false} '
            f"({error.errors()[0]['msg']})"
        ) from None
    return TriggerRequest(project=parsed.project, force=parsed.force, source=source)


@logger.inject_lambda_context(log_event=True)
def trigger(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    env = TriggerEnvironment.from_environ()
    request = parse_trigger_event(event)
    publisher = _publisher(env)
    try:
        result = request_training(
            request,
            settings=load_settings(env.settings_parameter),
            rekognition=TrainingRekognition(),
            store=_store(env),
            starter=ExecutionStarter(env.state_machine_arn),
            publisher=publisher,
        )
    except UnknownProjectError as error:
        logger.error("training requested for an unknown project", extra={"project": request.project})
        publisher.publish(EVENT_TRAINING_SKIPPED, request.project, reason=str(error), source=request.source)
        return {"project": request.project, "status": "SKIPPED", "reason": str(error)}
    logger.info("training trigger", extra=result.to_dict())
    return result.to_dict()


# --- state machine tasks ----------------------------------------------------------------------
@logger.inject_lambda_context
def preflight(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rekognition = TrainingRekognition()
    train = rekognition.describe_dataset("TRAIN", event["train_dataset_arn"])
    test = rekognition.describe_dataset("TEST", event["test_dataset_arn"])
    result = preflight_logic.check(
        project=event["project"],
        feature=event.get("feature") or "CUSTOM_LABELS",
        train=train,
        test=test,
        train_labels=rekognition.list_labels(train.arn),
        test_labels=rekognition.list_labels(test.arn),
    )
    if not result.ok:
        logger.warning("preflight failed", extra={"project": event["project"], "reason": result.reason})
        raise preflight_logic.PreflightError(f"preflight checks failed: {result.reason}")
    return result.to_output()


def _label_scores(outputs: TrainingOutputs, description: dict[str, Any] | None) -> dict[str, Any] | None:
    """LabelEvaluationResults of a version's evaluation summary (None: the version has none)."""
    location = training_outputs.summary_location(description or {})
    if location is None:
        return None
    try:
        return gate_logic.label_scores(outputs.read_json(location))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None  # the summary was deleted with the training output
        raise
    except ValueError as error:
        # A summary without per-label results (e.g. another feature's format): no label figures;
        # a configured label floor then fails by name ("no evaluation result").
        logger.warning("evaluation summary without per-label results", extra={"error": str(error)})
        return None


def _tested_set(outputs: TrainingOutputs, description: dict[str, Any] | None) -> tuple[str, int] | None:
    """Digest and size of the TEST lines a version was evaluated on (TestingDataResult.Output)."""
    locations = training_outputs.asset_locations(description or {}, "TestingDataResult", "Output")
    if not locations:
        return None
    lines: list[str] = []
    try:
        for location in locations:
            lines.extend(outputs.lines(location))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return gate_logic.evaluation_set_digest(lines)


def _evaluation_note(new: tuple[str, int] | None, old: tuple[str, int] | None, has_production: bool) -> dict:
    if not has_production:
        return {"same_test_set": None, "test_set_note": "no production version to compare with"}
    if new is None or old is None:
        return {
            "same_test_set": None,
            "test_set_note": "each version was evaluated on its own TEST set; the tested manifests could not "
            "be compared",
        }
    if new[0] == old[0]:
        return {
            "same_test_set": True,
            "test_set_note": "both versions were evaluated on the same TEST dataset snapshot "
            f"({new[1]} images)",
        }
    return {
        "same_test_set": False,
        "test_set_note": f"each version was evaluated on its own TEST set ({new[1]} vs {old[1]} images, "
        "different content): per-label differences mix the model and the test set",
    }


@logger.inject_lambda_context
def gate(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    project, settings = event["project"], event["settings"]
    description = event["version"]
    version = version_info(description)
    env = TrainingEnvironment.from_environ()
    store, rekognition, publisher = _store(env), TrainingRekognition(), _publisher(env)
    outputs = TrainingOutputs()
    production = store.get_production(project)
    status, production_description = None, None
    if production is not None:
        production_description = rekognition.describe_version_raw(
            event["project_arn"], production.version_name
        )
        status = str(production_description["Status"]) if production_description else "DELETED"
    new_labels = _label_scores(outputs, description) or {}
    old_labels = _label_scores(outputs, production_description)
    labels = gate_logic.label_table(new_labels, old_labels)
    floors = {str(k): float(v) for k, v in (settings.get("label_f1_floors") or {}).items()}
    max_drop = settings.get("max_label_f1_drop")
    note = _evaluation_note(
        _tested_set(outputs, description) if production is not None else None,
        _tested_set(outputs, production_description),
        production is not None,
    )
    publisher.publish(
        EVENT_TRAINING_COMPLETED,
        project,
        version_arn=version.arn,
        version_name=version.name,
        f1_score=version.f1_score,
        billable_training_seconds=description.get("BillableTrainingTimeInSeconds"),
        labels=labels,
    )
    decision = gate_logic.evaluate(
        version.f1_score,
        production=production,
        f1_floor=float(settings["f1_floor"]),
        margin=float(settings["promotion_margin"]),
    )
    failures = gate_logic.check_labels(
        new_labels,
        old_labels,
        floors=floors,
        max_drop=float(max_drop) if max_drop is not None else None,
    )
    decision = gate_logic.apply_label_rules(decision, failures)
    if not decision.promote:
        publisher.publish(
            EVENT_VERSION_REJECTED,
            project,
            version_arn=version.arn,
            version_name=version.name,
            f1_score=version.f1_score,
            reason=decision.reason,
            production_version_arn=production.version_arn if production else None,
            production_f1_score=production.f1_score if production else None,
            label_failures=[failure.to_dict() for failure in decision.label_failures],
            labels=labels,
            **note,
        )
    logger.info(
        "evaluation gate",
        extra={"project": project, "decision": decision.decision, "reason": decision.reason},
    )
    return {
        "decision": decision.decision,
        "reason": decision.reason,
        "f1_score": decision.f1_score,
        "version_arn": version.arn,
        "production": gate_logic.production_summary(production, status),
        "old_running": status == "RUNNING",
        "label_failures": [failure.label for failure in decision.label_failures],
        "same_test_set": note["same_test_set"],
    }


@logger.inject_lambda_context
def promote(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    production = event.get("production") or {}
    record = promotion.build_record(
        project=event["project"],
        version_arn=event["version_arn"],
        version_name=event["version_name"],
        f1_score=float(event["f1_score"]),
        snapshot=event.get("snapshot"),
        previous_version_arn=production.get("version_arn"),
        execution_arn=event.get("execution_arn"),
    )
    promotion.promote(_store(), record)
    _publisher().publish(
        EVENT_VERSION_PROMOTED,
        record.project,
        version_arn=record.version_arn,
        version_name=record.version_name,
        f1_score=record.f1_score,
        previous_version_arn=record.previous_version_arn,
        previous_f1_score=production.get("f1_score"),
        dataset_snapshot=record.dataset_snapshot.to_dict(),
        reason=event.get("reason"),
    )
    return {"version_arn": record.version_arn, "promoted_at": record.promoted_at}


@logger.inject_lambda_context
def retention_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    project = event["project"]
    env = TrainingEnvironment.from_environ()
    rekognition, store, publisher = TrainingRekognition(), _store(env), _publisher(env)
    production = store.get_production(project)
    plan = retention.plan(
        rekognition.list_versions(event["project_arn"]),
        retain=int(event["retain_versions"]),
        protected_arns=[production.version_arn if production else None, *event.get("protect", [])],
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
    return {"deleted": deleted, "kept": [v.arn for v in plan.keep]}


@logger.inject_lambda_context
def finish(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    released = _store().release_lock(
        event["project"],
        token=event["lock_token"],
        outcome=event["outcome"],
        reason=str(event.get("reason") or ""),
        now=_now(),
    )
    return {"released": released, "outcome": event["outcome"]}


@logger.inject_lambda_context
def failure(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Runs with the whole state at the failure; never raises for the cleanup steps it can skip."""
    event = event.get("state") or event
    project = event["project"]
    report = promotion.describe_failure(event)
    validation: dict[str, Any] | None = None
    if report.error == "TRAINING_FAILED":
        explained = training_outputs.explain_training_failure(
            (event.get("training") or {}).get("version") or {}
        )
        if not explained.empty or explained.unavailable:
            validation = explained.to_dict()
        if not explained.empty:
            report = promotion.FailureReport(
                report.error, f"{report.reason} ({explained.sentence()})", report.status_message
            )
    started = (event.get("created") or {}).get("ProjectVersionArn") if event.get("bluegreen") else None
    if started and not event.get("promotion"):
        try:
            TrainingRekognition().stop_version(started)
        except ClientError as error:
            logger.warning(
                "could not stop the unpromoted version", extra={"version_arn": started, "error": str(error)}
            )
    _publisher().publish(
        EVENT_TRAINING_FAILED,
        project,
        version_name=event.get("version_name"),
        version_arn=(event.get("created") or {}).get("ProjectVersionArn"),
        execution_arn=(event.get("execution") or {}).get("arn"),
        validation=validation,
        **report.to_dict(),
    )
    released = _store().release_lock(
        project, token=event["lock_token"], outcome="FAILED", reason=report.reason, now=_now()
    )
    logger.error("training failed", extra={"project": project, **report.to_dict()})
    return {**report.to_dict(), "released": released}


@logger.inject_lambda_context(log_event=True)
def execution_end(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Releases the lock of an execution that ended without its own clean-up (timeout, abort)."""
    detail = EventBridgeEvent(event).detail or {}
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
    released = _store().release_lock(project, token=token, outcome="FAILED", reason=reason, now=_now())
    if released:
        _publisher().publish(
            EVENT_TRAINING_FAILED,
            project,
            error=f"EXECUTION_{status}",
            reason=reason,
            status_message=str(detail.get("cause") or detail.get("error") or ""),
            version_name=payload.get("version_name"),
            execution_arn=detail.get("executionArn"),
        )
    return {"released": released, "status": status}
