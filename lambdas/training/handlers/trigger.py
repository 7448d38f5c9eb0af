"""Entry of the training trigger: a schedule's or an on-demand request -> decide, lock, start."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field, ValidationError

from lambdas.common.config import load_settings
from lambdas.common.constants import DETAIL_TYPE_TRAIN_REQUESTED
from lambdas.common.executions import ExecutionStarter
from lambdas.training.adapters import S3ManifestReader
from lambdas.training.environment import TriggerEnvironment
from lambdas.training.rekognition import TrainingRekognition
from lambdas.training.steps import run_trigger
from lambdas.training.trigger import TriggerRequest

logger = Logger()


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
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    env = TriggerEnvironment.from_environ()
    return run_trigger(
        parse_trigger_event(event),
        settings=load_settings(env.settings_parameter),
        store=env.store(),
        starter=ExecutionStarter(env.state_machine_arn),
        publisher=env.publisher(),
        rekognition=TrainingRekognition(),
        manifests=S3ManifestReader(env.bucket),
    )
