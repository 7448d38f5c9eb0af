"""Entry of the promotion step: the durable production record and version.promoted."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.training.contracts import PromoteRequest
from lambdas.training.environment import TrainingEnvironment
from lambdas.training.promotion import run_promote

logger = Logger()


@logger.inject_lambda_context
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PromoteRequest.model_validate(event)
    env = TrainingEnvironment.from_environ()
    return run_promote(request, store=env.store(), publisher=env.publisher()).model_dump()
