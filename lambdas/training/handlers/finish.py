"""Entry of the finish step: release the training lock with the outcome."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.training.contracts import FinishRequest
from lambdas.training.environment import TrainingEnvironment, now
from lambdas.training.steps import run_finish

logger = Logger()


@logger.inject_lambda_context
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = FinishRequest.model_validate(event)
    return run_finish(request, store=TrainingEnvironment.from_environ().store(), now=now()).model_dump()
