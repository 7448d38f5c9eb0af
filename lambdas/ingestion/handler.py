"""SQS -> ingestion. Records are S3 object-created notifications or flush requests.

Thin: validates the environment, builds the container's collaborators once and runs one batch
(batch.py), reporting partial batch failures. A record only fails (and is retried by SQS, then
dead-lettered) on an unexpected error; rejected input is published, and a busy dataset is handled
by sending a delayed flush request.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.common.config import IngestionEnvironment
from lambdas.ingestion.batch import Batch, batch_images, runtime
from lambdas.ingestion.policy import FLUSH_REQUEST
from lambdas.ingestion.staging import Stager

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)

__all__ = ["FLUSH_REQUEST", "IngestionEnvironment", "handle", "reset_runtime"]


def reset_runtime() -> None:
    """Forgets collaborators built for an earlier environment (tests)."""
    runtime.cache_clear()


@metrics.log_metrics
@logger.inject_lambda_context
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    built = runtime(IngestionEnvironment.from_environ())
    built.idempotency.register_lambda_context(context)
    batch = Batch(built, context, Stager(built.store))
    built.source.prefetch_image_infos(batch_images(event, built.env.bucket))
    response = process_partial_response(
        event=event, record_handler=batch.handle_record, processor=processor, context=context
    )
    batch.finish()
    for name, value in sorted(batch.counts.items()):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return dict(response)
