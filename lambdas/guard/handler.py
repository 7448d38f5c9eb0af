"""Account guard handler: one sweep per EventBridge Scheduler invocation (every guard.rate_minutes).

Thin: validates the environment and runs one sweep (sweep.py) with the container's collaborators.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.common.config import GuardEnvironment, load_settings
from lambdas.guard.sweep import build_deps, run_sweep

logger = Logger()
clock: Callable[[], float] = time.time  # tests replace it with a fake clock


@logger.inject_lambda_context(clear_state=True)
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    environment = GuardEnvironment.from_environ()
    outcome = run_sweep(load_settings(environment.settings_parameter), build_deps(environment), clock())
    logger.info("guard sweep", extra=outcome)
    return outcome
