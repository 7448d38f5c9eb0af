"""One controller pass for one project: observe, decide (policy.decide), act through the state machine.

Everything AWS is injected through `ControllerDeps`, so tests run this with fakes, Stubber or moto.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from lambdas.common import clock
from lambdas.common.constants import (
    EVENT_MODEL_START_ABANDONED,
    EVENT_MODEL_STARTING,
    EVENT_MODEL_STOPPING,
    FEATURE_CONTENT_MODERATION,
    TRANSITION_START,
    TRANSITION_STOP,
    USAGE_LEDGER_RETENTION_DAYS,
)
from lambdas.common.events import LifecyclePublisher
from lambdas.common.settings import ProjectSettings
from lambdas.serving import idle, policy
from lambdas.serving.contracts import ModelControlInput
from lambdas.serving.gateways import QueueBacklog, RekognitionModels, ServingTarget, TransitionStarter
from lambdas.serving.state import ServingStore
from lambdas.serving.windows import in_window


@dataclass
class ControllerDeps:
    store: ServingStore
    models: RekognitionModels
    queue: QueueBacklog
    starter: TransitionStarter
    publisher: LifecyclePublisher
    target: Callable[[str], ServingTarget | None]


@dataclass
class Outcome:
    project: str
    desired: str | None
    action: str
    reason: str
    model_status: str | None = None
    execution_arn: str | None = None
    running_minutes: float = 0.0
    unwanted_minutes: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def execution_name(project: str, transition: str, now: float) -> str:
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", project)[:40]
    return f"{safe}-{transition.lower()}-{int(now)}-{uuid.uuid4().hex[:8]}"


def transition_input(
    target: ServingTarget,
    transition: str,
    settings: ProjectSettings,
    attempt: int,
    now: float | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """The model control state machine's input (`ModelControlInput`, read by
    infra/workflows/model_control.py)."""
    now = clock.now() if now is None else now
    return ModelControlInput(
        **asdict(target),  # the project and the production version's ARNs and name
        action=transition,
        min_inference_units=settings.min_inference_units,
        # Always present (null: no auto-scaling), so the state machine's choice never reads a missing path.
        max_inference_units=settings.max_inference_units,
        poll_seconds=settings.model_poll_seconds,
        max_polls=policy.max_polls(settings.model_poll_seconds),
        polls=0,
        attempt=attempt,
        # Expiry (epoch seconds, the table's TTL) of the usage-ledger items this transition writes.
        ledger_expires_at=int(now + USAGE_LEDGER_RETENTION_DAYS * 86400),
        reason=reason or "requested",  # why the controller asked: kept in the usage ledger
    ).model_dump()


def control_project(
    project: str,
    settings: ProjectSettings,
    *,
    now: float,
    deps: ControllerDeps,
    controller_rate_minutes: int,
    scheduled_tick: bool = False,
) -> Outcome:
    if settings.feature == FEATURE_CONTENT_MODERATION:
        return Outcome(project, None, policy.Action.NONE, "moderation adapters need no inference units")

    target = deps.target(project)
    state = deps.store.load(project)
    status = deps.models.status(target) if target is not None else None
    observation = policy.Observation(
        now=now,
        model_status=status,
        queue_backlog=deps.queue.backlog(),
        in_window=in_window(settings.serving_windows, datetime.fromtimestamp(now, UTC)),
    )
    threshold = learn_idle_threshold(project, state, settings, now, deps.store, controller_rate_minutes)
    rules = policy.Policy(
        idle_minutes=settings.idle_minutes,
        start_retry_limit=settings.start_retry_limit,
        pending_ttl_seconds=policy.pending_ttl_seconds(settings.model_poll_seconds, controller_rate_minutes),
        idle_seconds=threshold.seconds,
    )
    decision = policy.decide(state, observation, rules)
    outcome = Outcome(project, decision.desired, decision.action, decision.reason, status)
    outcome.extra = {
        "queue_backlog": observation.queue_backlog,
        "in_window": observation.in_window,
        "idle_threshold_seconds": threshold.seconds,
        "idle_threshold": threshold.reason,
    }

    if scheduled_tick and status == policy.Status.RUNNING:
        outcome.running_minutes = float(controller_rate_minutes)
        if decision.desired is policy.Desired.STOPPED:
            outcome.unwanted_minutes = float(controller_rate_minutes)
    if status is not None and decision.reset_attempts:
        deps.store.record_status(project, status, reset_attempts=decision.reset_attempts)
    if decision.gave_up and target is not None and deps.store.mark_start_abandoned(project, now):
        # Once per give-up: the mark goes with the attempt count (RUNNING or nothing wants the model).
        deps.publisher.publish(
            EVENT_MODEL_START_ABANDONED,
            project,
            version_arn=target.version_arn,
            attempts=state.start_attempts,
            status_message=deps.models.status_message(target),
            reason=decision.reason,
        )
    if decision.action is policy.Action.NONE or target is None:
        return outcome

    transition = TRANSITION_START if decision.action is policy.Action.START else TRANSITION_STOP
    attempt = state.start_attempts + 1 if transition == TRANSITION_START else 0
    expires_at = now + policy.TRANSITION_TIMEOUT_SECONDS + policy.LOCK_MARGIN_SECONDS
    if not deps.store.acquire_transition(project, transition, now, expires_at, attempt):
        outcome.action = policy.Action.NONE
        outcome.reason = "another transition holds the lock"
        return outcome
    try:
        execution_arn = deps.starter.start(
            execution_name(project, transition, now),
            transition_input(target, transition, settings, attempt, now, decision.reason),
        )
    except Exception:
        deps.store.release_transition(project)  # let the next tick try again, then re-raise
        raise
    deps.store.attach_execution(project, execution_arn)
    outcome.execution_arn = execution_arn
    # A stop says which idle threshold it applied and why (adaptive, or idle_minutes as fallback).
    stop_detail = (
        {"idle_threshold_seconds": threshold.seconds, "idle_threshold": threshold.reason}
        if transition == TRANSITION_STOP
        else {}
    )
    deps.publisher.publish(
        EVENT_MODEL_STARTING if transition == TRANSITION_START else EVENT_MODEL_STOPPING,
        project,
        version_arn=target.version_arn,
        reason=decision.reason,
        attempt=attempt,
        execution_arn=execution_arn,
        min_inference_units=settings.min_inference_units,
        max_inference_units=settings.max_inference_units,
        **stop_detail,
    )
    return outcome


def learn_idle_threshold(
    project: str,
    state: policy.ServingState,
    settings: ProjectSettings,
    now: float,
    store: ServingStore,
    controller_rate_minutes: int,
) -> idle.IdleThreshold:
    """Feeds this pass's observations into the idle history (saved if changed); picks the threshold."""
    demands = [t for t in (state.last_detection_at, state.deferred_at) if t is not None]
    history = idle.update(
        state.idle,
        latest_demand=max(demands) if demands else None,
        finished=state.finished,
        now=now,
        tick_seconds=controller_rate_minutes * 60,
    )
    if history != state.idle:
        store.save_history(project, history, state.idle.revision)
    return idle.choose_threshold(history, settings.idle_minutes, controller_rate_minutes * 60)
