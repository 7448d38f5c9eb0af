"""Model controller handler: a scheduled tick per project, plus on-demand requests.

Input, either an EventBridge Scheduler payload::

    {"project": "digits", "trigger": "schedule"}

or an EventBridge event with detail-type DETAIL_TYPE_MODEL_CONTROL_REQUESTED::

    {"detail-type": "...", "source": "...", "detail": {"project": "digits", "action": "start",
                                                        "override_minutes": 120}}

"start" / "stop" set a manual override for `override_minutes` (default DEFAULT_OVERRIDE_MINUTES);
"auto" clears it (ticks and detection's start requests, which carry a "trigger", leave it
alone). Every request then runs one controller pass for the project (control.py).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, Literal

from aws_lambda_powertools import Logger, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambdas.common import clock as shared_clock
from lambdas.common.config import load_settings
from lambdas.common.constants import (
    CONTROL_ACTION_AUTO,
    CONTROL_ACTION_START,
    CONTROL_TRIGGER_DETECTION,
    CONTROL_TRIGGER_SCHEDULE,
    DEFAULT_OVERRIDE_MINUTES,
    ENV_DETECTION_QUEUE_URL,
    ENV_LIFECYCLE_TOPIC,
    ENV_MODEL_CONTROL_STATE_MACHINE,
    ENV_STATE_TABLE,
    METRIC_DIMENSION_PROJECT,
    METRIC_MODEL_RUNNING_MINUTES,
    METRIC_MODEL_RUNNING_UNWANTED_MINUTES,
)
from lambdas.common.events import LifecyclePublisher
from lambdas.serving.control import ControllerDeps, Outcome, control_project
from lambdas.serving.gateways import QueueBacklog, RekognitionModels, TransitionStarter, load_target
from lambdas.serving.policy import Desired
from lambdas.serving.state import ServingStore

logger = Logger()
clock: Callable[[], float] = shared_clock.now  # tests replace it with a fake clock


class ControllerEnvironment(BaseModel):
    model_config = ConfigDict(frozen=True)

    state_table: str = Field(alias=ENV_STATE_TABLE, min_length=1)
    lifecycle_topic: str = Field(alias=ENV_LIFECYCLE_TOPIC, min_length=1)
    state_machine_arn: str = Field(alias=ENV_MODEL_CONTROL_STATE_MACHINE, min_length=1)
    detection_queue_url: str | None = Field(default=None, alias=ENV_DETECTION_QUEUE_URL)


class ControlRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    project: str | None = None
    action: Literal["start", "stop", "auto"] = CONTROL_ACTION_AUTO
    override_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    trigger: str | None = None


def parse_request(event: dict[str, Any]) -> ControlRequest:
    payload = event.get("detail", {}) if "detail-type" in event else event
    try:
        return ControlRequest.model_validate(payload or {})
    except ValidationError as error:
        raise ValueError(
            f"model control request {payload!r} is invalid: {error.errors(include_url=False)}; expected "
            '{"project": "<name>", "action": "start"|"stop"|"auto", "override_minutes": <1..10080>}'
        ) from None


def apply_override(store: ServingStore, project: str, request: ControlRequest, now: float) -> None:
    if request.action == CONTROL_ACTION_AUTO:
        if request.trigger not in (CONTROL_TRIGGER_SCHEDULE, CONTROL_TRIGGER_DETECTION):
            store.clear_override(project)  # an explicit "auto" returns the project to automatic control
        return
    state = Desired.RUNNING if request.action == CONTROL_ACTION_START else Desired.STOPPED
    minutes = request.override_minutes or DEFAULT_OVERRIDE_MINUTES
    store.set_override(project, state, now + minutes * 60)


@functools.cache
def build_deps(environment: ControllerEnvironment) -> ControllerDeps:
    models = RekognitionModels()
    return ControllerDeps(
        store=ServingStore(environment.state_table),
        models=models,
        queue=QueueBacklog(environment.detection_queue_url),
        starter=TransitionStarter(environment.state_machine_arn),
        publisher=LifecyclePublisher(environment.lifecycle_topic),
        target=lambda project: load_target(project, models, table_name=environment.state_table),
    )


def emit_metrics(outcome: Outcome) -> None:
    for name, value in (
        (METRIC_MODEL_RUNNING_MINUTES, outcome.running_minutes),
        (METRIC_MODEL_RUNNING_UNWANTED_MINUTES, outcome.unwanted_minutes),
    ):
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=value,
            default_dimensions={METRIC_DIMENSION_PROJECT: outcome.project},
        ):
            pass


@logger.inject_lambda_context(clear_state=True)
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    environment = ControllerEnvironment.model_validate(dict(os.environ))
    settings = load_settings()
    request = parse_request(event)
    deps = build_deps(environment)
    now = clock()
    projects = [request.project] if request.project else sorted(settings.projects)
    outcomes = []
    for project in projects:
        project_settings = settings.project(project)
        if request.project:
            apply_override(deps.store, project, request, now)
        outcome = control_project(
            project,
            project_settings,
            now=now,
            deps=deps,
            controller_rate_minutes=settings.controller_rate_minutes,
            scheduled_tick=request.trigger == CONTROL_TRIGGER_SCHEDULE,
        )
        if request.trigger == CONTROL_TRIGGER_SCHEDULE:
            emit_metrics(outcome)
        logger.info("controller pass", extra=outcome.to_dict())
        outcomes.append(outcome.to_dict())
    return {"outcomes": outcomes}
