"""Entry of the retention step: delete old versions beyond the configured count."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.training.contracts import RetentionRequest
from lambdas.training.environment import run_recorded
from lambdas.training.rekognition import TrainingRekognition
from lambdas.training.steps import run_retention

logger = Logger()


@logger.inject_lambda_context
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RetentionRequest.model_validate(event)
    return run_recorded(run_retention, request, rekognition=TrainingRekognition())
