"""Entry of the execution-end backstop: an execution that TIMED_OUT, was ABORTED or FAILED
without its own clean-up releases its lock here and is reported."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.training.environment import now, run_recorded
from lambdas.training.steps import run_execution_end

logger = Logger()


@logger.inject_lambda_context(log_event=True)
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = EventBridgeEvent(event).detail or {}
    return run_recorded(run_execution_end, detail, now=now())
