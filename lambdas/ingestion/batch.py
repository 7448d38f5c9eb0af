"""One SQS batch of ingestion messages: S3 object-created notifications and flush requests.

Per record: ingest every uploaded object (`ingest.ingest_object`) or flush one dataset
(`service.Flusher`). After the records: stage the batch's image lines together, publish the
rejections and ask for a flush of every dataset that got new lines or must be tried again.
"""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.common import aws
from lambdas.common.config import IngestionEnvironment, load_settings
from lambdas.common.constants import EVENT_ENTRIES_REJECTED, IMAGE_SUFFIXES, METRIC_INGESTION_STALLED
from lambdas.common.events import KeepingPublisher, LifecyclePublisher
from lambdas.ingestion.adapter_manifests import AdapterManifests
from lambdas.ingestion.datasets import DatasetGateway
from lambdas.ingestion.flush_queue import FlushQueue
from lambdas.ingestion.ingest import (
    IngestResult,
    Rejection,
    S3ObjectEvent,
    ingest_object,
    is_manifest_key,
    publish_rejections,
)
from lambdas.ingestion.keys import decode_key
from lambdas.ingestion.objects import S3ObjectSource
from lambdas.ingestion.policy import flush_deadline, flush_retry_delay, is_flush_request
from lambdas.ingestion.service import Flusher
from lambdas.ingestion.staging import DatasetLease, Stager, StagingStore

logger = Logger(child=True)

IDEMPOTENCY_SECONDS = 6 * 3600


@dataclass
class Runtime:
    """Collaborators of one container, built on first use (never at import time)."""

    env: IngestionEnvironment
    source: S3ObjectSource
    store: StagingStore
    flusher: Flusher
    publisher: KeepingPublisher
    flushes: FlushQueue
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


@functools.cache
def runtime(env: IngestionEnvironment) -> Runtime:
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
        manifests=AdapterManifests(env.bucket),
    )
    persistence = DynamoDBPersistenceLayer(
        table_name=env.idempotency_table, boto3_client=aws.client("dynamodb")
    )
    config = IdempotencyConfig(
        event_key_jmespath="[bucket, key, version_id, sequencer]",
        expires_after_seconds=IDEMPOTENCY_SECONDS,
        raise_on_no_idempotency_key=True,
    )
    built = Runtime(env, S3ObjectSource(), store, flusher, publisher, FlushQueue(env.queue_url), None, config)

    # Manifests only: reading and staging up to 250,000 lines is worth an idempotency record; for
    # an image the record would cost more writes than the duplicate it saves (staging is keyed by
    # source-ref, so a duplicate image only rewrites its own staged line).
    @idempotent_function(data_keyword_argument="s3_object", persistence_store=persistence, config=config)
    def ingest_manifest(s3_object: dict[str, Any]) -> dict[str, Any]:
        return built.ingest(s3_object).to_dict()

    built.ingest_manifest = ingest_manifest
    return built


@dataclass
class Batch:
    """One invocation's records and what they left to do after them."""

    runtime: Runtime
    context: LambdaContext
    stager: Stager
    rejections: list[tuple[str | None, Rejection]] = field(default_factory=list)
    deferred: dict[tuple[str, str], int] = field(default_factory=dict)  # flushes to request again, delay
    counts: Counter[str] = field(default_factory=Counter)

    def handle_record(self, record: SQSRecord) -> None:
        body = record.json_body
        if not isinstance(body, dict):
            logger.warning(
                "ignoring a message that is not a JSON object", extra={"message_id": record.message_id}
            )
            return
        if is_flush_request(body):
            self.flush(body["project"], body["dataset_type"])
            return
        if body.get("Event") == "s3:TestEvent":
            return
        for s3_object in s3_objects(body):
            self.ingest(s3_object)

    def ingest(self, s3_object: dict[str, Any]) -> None:
        if is_manifest_key(s3_object["key"]):
            result = IngestResult.from_dict(self.runtime.ingest_manifest(s3_object=s3_object))
        else:
            result = self.runtime.ingest(s3_object)
        self.rejections.extend((result.project, r) for r in result.rejections)
        self.counts["EntriesRejected"] += len(result.rejections)
        if result.project and result.dataset_type:
            if result.pending:
                self.stager.hold(result.project, result.dataset_type, result.pending)
            if result.staged:
                self.stager.staged(result.project, result.dataset_type)
                self.counts["EntriesStaged"] += result.staged
        if result.ignored:
            logger.info("ignored", extra={"key": result.key, "reason": result.ignored})

    def flush(self, project: str, dataset_type: str) -> None:
        env = self.runtime.env
        deadline = flush_deadline(time.monotonic(), self.context.get_remaining_time_in_millis() / 1000.0)
        result = self.runtime.flusher.flush(
            project,
            dataset_type,
            settings=load_settings(env.settings_parameter),
            owner=self.context.aws_request_id,
            deadline=deadline,
        )
        logger.info("flush", extra={"result": result.__dict__})
        self.counts["UpdateDatasetEntriesCalls"] += result.calls
        self.counts["EntriesApplied"] += result.added + result.updated
        self.counts["EntriesRejected"] += result.removed + result.refused
        if result.status == "stalled":
            # Service errors for longer than the bound: the lines stay staged; the metric's alarm
            # tells an operator, and the next upload to the dataset tries again.
            logger.error("dataset updates stalled", extra={"result": result.__dict__})
            self.counts[METRIC_INGESTION_STALLED] += 1
        if result.needs_retry:
            self.counts["FlushesDeferred"] += 1
            self.deferred[(project, dataset_type)] = flush_retry_delay(
                result.retry_after, env.flush_delay_seconds
            )

    def finish(self) -> None:
        """Stages the held image lines (a few batched writes instead of one per image), reports the
        rejections and asks for a flush of every touched dataset. A failure here fails the whole
        invocation; every step is idempotent, so SQS simply retries."""
        self.counts["EntriesStaged"] += self.stager.write_held()
        publish_rejections(self.runtime.publisher, self.rejections)
        delay = self.runtime.env.flush_delay_seconds
        for dataset in sorted(self.stager.touched | set(self.deferred)):
            self.runtime.flushes.request(*dataset, self.deferred.get(dataset, delay))


def s3_objects(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The created objects an S3 notification names (other events name none)."""
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


def batch_images(event: dict[str, Any], bucket: str) -> list[tuple[str, str, str | None]]:
    """The uploaded images (bucket, key, version) a batch names, for reading their headers ahead."""
    images = []
    for record in event.get("Records") or []:
        try:
            body = json.loads(record.get("body") or "")
        except (TypeError, ValueError):
            continue  # the record handler reports it
        try:
            found = s3_objects(body) if isinstance(body, dict) else []
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # a malformed notification: the record handler reports it
        for s3_object in found:
            key = s3_object["key"]
            if (
                s3_object["bucket"] == bucket
                and key.lower().endswith(IMAGE_SUFFIXES)
                and not is_manifest_key(key)
            ):
                images.append((s3_object["bucket"], key, s3_object["version_id"]))
    return images
