"""Entry of the evaluation gate step."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.training.contracts import GateRequest
from lambdas.training.environment import run_recorded
from lambdas.training.evaluation import run_gate
from lambdas.training.outputs import TrainingOutputs
from lambdas.training.rekognition import TrainingRekognition

logger = Logger()


@logger.inject_lambda_context
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = GateRequest.model_validate(event)
    return run_recorded(run_gate, request, rekognition=TrainingRekognition(), outputs=TrainingOutputs())
