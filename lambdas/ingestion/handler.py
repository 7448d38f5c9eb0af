"""SQS -> ingestion. Records are S3 object-created notifications or flush requests.

Thin: parses records at the edge, calls the use cases in service.py, reports partial batch
failures. A record only fails (and is retried by SQS, then dead-lettered) on an unexpected error;
rejected input is published, and a busy dataset is handled by sending a delayed flush request.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from lambdas.common import aws
from lambdas.common.config import load_settings
from lambdas.common.constants import (
    ENV_BUCKET,
    ENV_DATASET_POLL_SECONDS,
    ENV_IDEMPOTENCY_TABLE,
    ENV_INGESTION_FLUSH_DELAY,
    ENV_INGESTION_QUEUE_URL,
    ENV_INGESTION_RETRY_HOURS,
    ENV_LIFECYCLE_TOPIC,
    ENV_SETTINGS_PARAMETER,
    ENV_STATE_TABLE,
    EVENT_ENTRIES_REJECTED,
    IMAGE_SUFFIXES,
    METRIC_INGESTION_STALLED,
)
from lambdas.common.events import KeepingPublisher, LifecyclePublisher
from lambdas.ingestion.datasets import DatasetGateway
from lambdas.ingestion.keys import decode_key
from lambdas.ingestion.lines import Line
from lambdas.ingestion.objects import S3ObjectSource
from lambdas.ingestion.service import (
    DEFAULT_RETRY_HOURS,
    SQS_MAX_DELAY_SECONDS,
    Flusher,
    IngestResult,
    Rejection,
    S3ObjectEvent,
    ingest_object,
    is_manifest_key,
    publish_rejections,
)
from lambdas.ingestion.staging import DatasetLease, StagingStore

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)

FLUSH_REQUEST = "autopilot.ingestion.flush"
IDEMPOTENCY_SECONDS = 6 * 3600


class IngestionEnvironment(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    bucket: str = Field(alias=ENV_BUCKET, min_length=3)
    lifecycle_topic_arn: str = Field(alias=ENV_LIFECYCLE_TOPIC, pattern=r"^arn:")
    state_table: str = Field(alias=ENV_STATE_TABLE, min_length=3)
    idempotency_table: str = Field(alias=ENV_IDEMPOTENCY_TABLE, min_length=3)
    settings_parameter: str = Field(alias=ENV_SETTINGS_PARAMETER, min_length=1)
    queue_url: str = Field(alias=ENV_INGESTION_QUEUE_URL, pattern=r"^https?://")
    flush_delay_seconds: int = Field(
        default=20, alias=ENV_INGESTION_FLUSH_DELAY, ge=0, le=SQS_MAX_DELAY_SECONDS
    )
    dataset_poll_seconds: float = Field(default=5.0, alias=ENV_DATASET_POLL_SECONDS, gt=0, le=300)
    retry_hours: float = Field(default=DEFAULT_RETRY_HOURS, alias=ENV_INGESTION_RETRY_HOURS, gt=0, le=24 * 14)

    @classmethod
    def from_environ(cls) -> IngestionEnvironment:
        return cls.model_validate(dict(os.environ))


@dataclass
class Runtime:
    """Collaborators of one container, built on first use (never at import time)."""

    env: IngestionEnvironment
    source: S3ObjectSource
    store: StagingStore
    flusher: Flusher
    publisher: KeepingPublisher
    ingest_manifest: Any  # ingest(s3_object=...) behind a Powertools idempotency record
    idempotency: IdempotencyConfig

    def ingest(self, s3_object: dict[str, Any]) -> IngestResult:
        return ingest_object(
            S3ObjectEvent(**s3_object),
            settings=load_settings(self.env.settings_parameter),
            data_bucket=self.env.bucket,
            source=self.source,
            store=self.store,
        )

    def request_flush(self, project: str, dataset_type: str, delay: int) -> None:
        aws.client("sqs").send_message(
            QueueUrl=self.env.queue_url,
            MessageBody=json.dumps({"type": FLUSH_REQUEST, "project": project, "dataset_type": dataset_type}),
            DelaySeconds=max(0, min(SQS_MAX_DELAY_SECONDS, delay)),
        )


@functools.cache
def _runtime(env: IngestionEnvironment) -> Runtime:
    store = StagingStore(env.state_table)
    # Rejections are also kept for a while: `autopilot report` lists those of the last days.
    publisher = KeepingPublisher(
        LifecyclePublisher(env.lifecycle_topic_arn), env.state_table, kept=(EVENT_ENTRIES_REJECTED,)
    )
    flusher = Flusher(
        store=store,
        lease=DatasetLease(env.state_table),
        gateway=DatasetGateway(poll_seconds=env.dataset_poll_seconds),
        publisher=publisher,
        clock=time.monotonic,
        retry_bound_seconds=env.retry_hours * 3600,
        retry_base_seconds=env.flush_delay_seconds,
    )
    persistence = DynamoDBPersistenceLayer(
        table_name=env.idempotency_table, boto3_client=aws.client("dynamodb")
    )
    config = IdempotencyConfig(
        event_key_jmespath="[bucket, key, version_id, sequencer]",
        expires_after_seconds=IDEMPOTENCY_SECONDS,
        raise_on_no_idempotency_key=True,
    )
    runtime = Runtime(env, S3ObjectSource(), store, flusher, publisher, None, config)

    # Manifests only: reading and staging up to 250,000 lines is worth an idempotency record; for
    # an image the record would cost more writes than the duplicate it saves (staging is keyed by
    # source-ref, so a duplicate image only rewrites its own staged line).
    @idempotent_function(data_keyword_argument="s3_object", persistence_store=persistence, config=config)
    def ingest_manifest(s3_object: dict[str, Any]) -> dict[str, Any]:
        return runtime.ingest(s3_object).to_dict()

    runtime.ingest_manifest = ingest_manifest
    return runtime


def reset_runtime() -> None:
    """Forgets collaborators built for an earlier environment (tests)."""
    _runtime.cache_clear()


@dataclass
class BatchOutcome:
    rejections: list[tuple[str | None, Rejection]] = field(default_factory=list)
    pending: dict[tuple[str, str], list[tuple[Line, str]]] = field(default_factory=dict)
    staged: set[tuple[str, str]] = field(default_factory=set)  # datasets that got new lines
    deferred: dict[tuple[str, str], int] = field(default_factory=dict)  # flushes to request again, delay
    counts: Counter[str] = field(default_factory=Counter)


def _s3_objects(body: dict[str, Any]) -> list[dict[str, Any]]:
    objects = []
    for record in body.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            continue
        s3 = record["s3"]
        obj = s3["object"]
        objects.append(
            {
                "bucket": s3["bucket"]["name"],
                "key": decode_key(obj["key"]),
                "size": int(obj.get("size", 0)),
                "event_time": record.get("eventTime", ""),
                "sequencer": obj.get("sequencer", ""),
                "version_id": obj.get("versionId") or None,
            }
        )
    return objects


def _batch_images(event: dict[str, Any], bucket: str) -> list[tuple[str, str, str | None]]:
    """The uploaded images (bucket, key, version) a batch names, for reading their headers ahead."""
    images = []
    for record in event.get("Records") or []:
        try:
            body = json.loads(record.get("body") or "")
        except (TypeError, ValueError):
            continue  # the record handler reports it
        try:
            s3_objects = _s3_objects(body) if isinstance(body, dict) else []
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # a malformed notification: the record handler reports it
        for s3_object in s3_objects:
            key = s3_object["key"]
            if (
                s3_object["bucket"] == bucket
                and key.lower().endswith(IMAGE_SUFFIXES)
                and not is_manifest_key(key)
            ):
                images.append((s3_object["bucket"], key, s3_object["version_id"]))
    return images


def _handle_record(
    record: SQSRecord, runtime: Runtime, outcome: BatchOutcome, context: LambdaContext
) -> None:
    body = record.json_body
    if not isinstance(body, dict):
        logger.warning(
            "ignoring a message that is not a JSON object", extra={"message_id": record.message_id}
        )
        return
    if body.get("type") == FLUSH_REQUEST:
        _flush(body["project"], body["dataset_type"], runtime, outcome, context)
        return
    if body.get("Event") == "s3:TestEvent":
        return
    for s3_object in _s3_objects(body):
        if is_manifest_key(s3_object["key"]):
            result = IngestResult.from_dict(runtime.ingest_manifest(s3_object=s3_object))
        else:
            result = runtime.ingest(s3_object)
        outcome.rejections.extend((result.project, r) for r in result.rejections)
        outcome.counts["EntriesRejected"] += len(result.rejections)
        if result.project and result.dataset_type:
            if result.pending:
                outcome.pending.setdefault((result.project, result.dataset_type), []).extend(result.pending)
            if result.staged:
                outcome.staged.add((result.project, result.dataset_type))
                outcome.counts["EntriesStaged"] += result.staged
        if result.ignored:
            logger.info("ignored", extra={"key": result.key, "reason": result.ignored})


def _flush(
    project: str, dataset_type: str, runtime: Runtime, outcome: BatchOutcome, context: LambdaContext
) -> None:
    remaining = context.get_remaining_time_in_millis() / 1000.0
    deadline = time.monotonic() + remaining - min(60.0, remaining * 0.2)
    settings = load_settings(runtime.env.settings_parameter)
    result = runtime.flusher.flush(
        project, dataset_type, settings=settings, owner=context.aws_request_id, deadline=deadline
    )
    logger.info("flush", extra={"result": result.__dict__})
    outcome.counts["UpdateDatasetEntriesCalls"] += result.calls
    outcome.counts["EntriesApplied"] += result.added + result.updated
    outcome.counts["EntriesRejected"] += result.removed + result.refused
    if result.status == "stalled":
        # Service errors for longer than the bound: the lines stay staged; the metric's alarm tells
        # an operator, and the next upload to the dataset tries again.
        logger.error("dataset updates stalled", extra={"result": result.__dict__})
        outcome.counts[METRIC_INGESTION_STALLED] += 1
    if result.needs_retry:
        outcome.counts["FlushesDeferred"] += 1
        delay = result.retry_after if result.retry_after is not None else runtime.env.flush_delay_seconds
        outcome.deferred[(project, dataset_type)] = delay


@metrics.log_metrics
@logger.inject_lambda_context
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    runtime = _runtime(IngestionEnvironment.from_environ())
    runtime.idempotency.register_lambda_context(context)
    outcome = BatchOutcome()
    runtime.source.prefetch_image_infos(_batch_images(event, runtime.env.bucket))
    response = process_partial_response(
        event=event,
        record_handler=lambda record: _handle_record(record, runtime, outcome, context),
        processor=processor,
        context=context,
    )
    # After the records: stage the batch's image lines together (a few batched writes instead
    # of one per image), report rejections, and make sure every touched dataset gets flushed.
    # A failure here fails the whole invocation; every step is idempotent, so SQS simply retries.
    for (project, dataset_type), versions in outcome.pending.items():
        runtime.store.stage_versions(project, dataset_type, versions)
        outcome.staged.add((project, dataset_type))
        outcome.counts["EntriesStaged"] += len(versions)
    publish_rejections(runtime.publisher, outcome.rejections)
    delay = runtime.env.flush_delay_seconds
    for project, dataset_type in sorted(outcome.staged | set(outcome.deferred)):
        runtime.request_flush(project, dataset_type, outcome.deferred.get((project, dataset_type), delay))
    for name, value in sorted(outcome.counts.items()):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return dict(response)
