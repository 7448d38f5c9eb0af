"""Entry of the promotion step: the durable production record and version.promoted."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.training.contracts import PromoteRequest
from lambdas.training.environment import run_recorded
from lambdas.training.promotion import run_promote

logger = Logger()


@logger.inject_lambda_context
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_recorded(run_promote, PromoteRequest.model_validate(event))
