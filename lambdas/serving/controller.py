"""Model controller handler: a scheduled tick per project, plus on-demand requests.

Thin: validates the environment and the request (requests.py), builds the container's
collaborators once and runs the request's controller passes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.common import clock as shared_clock
from lambdas.common.config import ControllerEnvironment, load_settings
from lambdas.common.events import LifecyclePublisher
from lambdas.serving.control import ControllerDeps
from lambdas.serving.gateways import QueueBacklog, RekognitionModels, TransitionStarter, load_target
from lambdas.serving.requests import parse_request, run_request
from lambdas.serving.state import ServingStore

logger = Logger()
clock: Callable[[], float] = shared_clock.now  # tests replace it with a fake clock


@functools.cache
def build_deps(environment: ControllerEnvironment) -> ControllerDeps:
    models = RekognitionModels()
    return ControllerDeps(
        store=ServingStore(environment.state_table),
        models=models,
        queue=QueueBacklog(environment.detection_queue_url),
        starter=TransitionStarter(environment.state_machine_arn),
        publisher=LifecyclePublisher(environment.lifecycle_topic),
        target=lambda project: load_target(project, models, table_name=environment.state_table),
    )


@logger.inject_lambda_context(clear_state=True)
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    environment = ControllerEnvironment.from_environ()
    settings = load_settings(environment.settings_parameter)
    request = parse_request(event)
    return {"outcomes": run_request(request, settings, build_deps(environment), clock())}
