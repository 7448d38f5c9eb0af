"""Entry of the failure step: report, stop an unpromoted new version, release the lock."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.training.environment import now, run_recorded
from lambdas.training.rekognition import TrainingRekognition
from lambdas.training.steps import run_failure

logger = Logger()


@logger.inject_lambda_context
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The state machine sends {"state": <the whole state at the failure>}."""
    state = event.get("state") or event
    return run_recorded(run_failure, state, rekognition=TrainingRekognition(), now=now())
