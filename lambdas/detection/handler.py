"""Detection handler: SQS batches of S3 notifications for `<project>/inference/...` images.

Thin: validates the environment, builds one run (run.py) and hands it every record; unexpected
errors fail only their own message (partial batch response).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.common import clock as shared_clock
from lambdas.common.config import DetectionEnvironment, load_settings
from lambdas.detection.run import build_run, idempotency_config, idempotent_classify, process_record

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
clock: Callable[[], float] = shared_clock.now  # tests replace it with a fake clock

__all__ = ["handle", "idempotent_classify"]


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    environment = DetectionEnvironment.from_environ()
    idempotency_config.register_lambda_context(context)
    run = build_run(environment, load_settings(environment.settings_parameter), clock())
    response = process_partial_response(
        event=event,
        record_handler=functools.partial(process_record, run=run),
        processor=processor,
        context=context,
    )
    return dict(response)
