"""Entry of the preflight step: ListDatasetLabels checks before paying for a training."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.training.contracts import PreflightRequest
from lambdas.training.rekognition import TrainingRekognition
from lambdas.training.steps import run_preflight

logger = Logger()


@logger.inject_lambda_context
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PreflightRequest.model_validate(event)
    return run_preflight(request, rekognition=TrainingRekognition()).model_dump()
