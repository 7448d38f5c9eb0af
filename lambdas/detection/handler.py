"""Detection handler: SQS batches of S3 notifications for `<project>/inference/...` images.

Per message: classify every image (idempotent per bucket/key/version). When the model is not
RUNNING, or Rekognition throttles, the message goes back to the queue with a delay and is
acknowledged (no receive count spent); for a model that is not running, the project's SERVING
item gets a deferral marker and the controller is asked for a pass. Unexpected errors fail only
their own message (partial batch response).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from lambdas.common import aws
from lambdas.common import clock as shared_clock
from lambdas.common.config import load_settings
from lambdas.common.constants import (
    DETECTION_STATUS_ERROR,
    ENV_DETECTION_QUEUE_URL,
    ENV_DETECTIONS_TOPIC,
    ENV_EVENT_BUS,
    ENV_IDEMPOTENCY_TABLE,
    ENV_STATE_TABLE,
    METRIC_IMAGE_ERRORS,
    METRIC_IMAGES_CLASSIFIED,
    METRIC_IMAGES_DEFERRED,
)
from lambdas.common.production import get_production
from lambdas.common.settings import AppSettings
from lambdas.detection.deferral import (
    START_REQUEST_INTERVAL_SECONDS,
    ControlRequester,
    DeferralInfo,
    Requeuer,
    throttle_delay,
)
from lambdas.detection.detect import (
    Detector,
    ImageRef,
    ModelNotReady,
    NoProductionVersion,
    NotAnInferenceImage,
    Throttled,
    image_from_notification,
)
from lambdas.detection.results import ResultSink
from lambdas.detection.service import DetectionService
from lambdas.serving.policy import deferral_delay_seconds
from lambdas.serving.state import ServingStore

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
clock: Callable[[], float] = shared_clock.now  # tests replace it with a fake clock

IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600


class DetectionEnvironment(BaseModel):
    model_config = ConfigDict(frozen=True)

    detections_topic: str = Field(alias=ENV_DETECTIONS_TOPIC, min_length=1)
    state_table: str = Field(alias=ENV_STATE_TABLE, min_length=1)
    idempotency_table: str = Field(alias=ENV_IDEMPOTENCY_TABLE, min_length=1)
    queue_url: str = Field(alias=ENV_DETECTION_QUEUE_URL, min_length=1)
    event_bus: str = Field(default="default", alias=ENV_EVENT_BUS)


def _classify(*, image: dict[str, str], service: DetectionService, now: float) -> dict[str, Any]:
    return service.classify(ImageRef(**image), now=now)


idempotency_config = IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_TTL_SECONDS)


@functools.cache
def idempotent_classify(table_name: str) -> Callable[..., dict[str, Any]]:
    """`_classify` wrapped in Powertools idempotency (built on first use, never at import)."""
    persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=aws.client("dynamodb"))
    return idempotent_function(  # type: ignore[no-any-return]
        _classify, data_keyword_argument="image", persistence_store=persistence, config=idempotency_config
    )


@dataclass
class BatchRun:
    """One invocation: the collaborators, plus what was already recorded for each project."""

    environment: DetectionEnvironment
    settings: AppSettings
    service: DetectionService
    store: ServingStore
    requeuer: Requeuer
    requester: ControlRequester
    now: float
    detected: set[str] = field(default_factory=set)
    deferred: set[str] = field(default_factory=set)

    def classified(self, project: str, result: dict[str, Any]) -> None:
        failed = result["status"] == DETECTION_STATUS_ERROR
        metrics.add_metric(
            name=METRIC_IMAGE_ERRORS if failed else METRIC_IMAGES_CLASSIFIED, unit=MetricUnit.Count, value=1
        )
        if project not in self.detected:
            self.detected.add(project)
            self.store.record_detection(project, self.now)

    def defer(self, record: SQSRecord, project: str, reason: Exception) -> None:
        info = DeferralInfo.from_attributes(record.raw_event.get("messageAttributes") or {})
        if isinstance(reason, Throttled | IdempotencyAlreadyInProgressError):
            delay = throttle_delay(info.count)
        else:
            model_poll = (
                self.settings.projects[project].model_poll_seconds
                if project in self.settings.projects
                else 60
            )
            delay = deferral_delay_seconds(model_poll)
        self.requeuer.requeue(record.body, info, now=self.now, delay_seconds=delay)
        metrics.add_metric(name=METRIC_IMAGES_DEFERRED, unit=MetricUnit.Count, value=1)
        logger.info(
            "image deferred",
            extra={"project": project, "reason": str(reason), "delay": delay, "count": info.count},
        )
        if isinstance(reason, ModelNotReady) and not isinstance(reason, NoProductionVersion):
            self._ask_for_start(project)

    def _ask_for_start(self, project: str) -> None:
        if project in self.deferred:
            return
        self.deferred.add(project)
        previous = self.store.record_deferral(project, self.now)
        if previous is None or self.now - previous >= START_REQUEST_INTERVAL_SECONDS:
            self.requester.request_start(project)


def images_of(body: dict[str, Any]) -> list[ImageRef]:
    """The inference images named by one S3 notification (the s3:TestEvent names none)."""
    images = []
    for s3_record in S3Event(body).records:
        s3 = s3_record.s3
        try:
            images.append(
                image_from_notification(
                    s3.bucket.name, s3.get_object.key, s3.get_object.version_id, s3.get_object.etag
                )
            )
        except NotAnInferenceImage as error:
            logger.warning(str(error))
    return images


def process_record(record: SQSRecord, run: BatchRun) -> None:
    body = json.loads(record.body)
    if body.get("Event") == "s3:TestEvent" or "Records" not in body:
        return
    classify = idempotent_classify(run.environment.idempotency_table)
    for image in images_of(body):
        try:
            result = classify(image=image.payload(), service=run.service, now=run.now)
        except (ModelNotReady, Throttled, IdempotencyAlreadyInProgressError) as reason:
            run.defer(record, image.project, reason)
            return  # the whole message waits; images already classified are idempotent no-ops later
        run.classified(image.project, result)


def build_run(environment: DetectionEnvironment, settings: AppSettings, now: float) -> BatchRun:
    return BatchRun(
        environment=environment,
        settings=settings,
        service=DetectionService(
            settings=settings,
            production=lambda project: get_production(project, table_name=environment.state_table),
            detector=Detector(),
            sink=ResultSink(environment.detections_topic),
        ),
        store=ServingStore(environment.state_table),
        requeuer=Requeuer(environment.queue_url),
        requester=ControlRequester(environment.event_bus),
        now=now,
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    environment = DetectionEnvironment.model_validate(dict(os.environ))
    idempotency_config.register_lambda_context(context)
    run = build_run(environment, load_settings(), clock())
    response = process_partial_response(
        event=event,
        record_handler=functools.partial(process_record, run=run),
        processor=processor,
        context=context,
    )
    return dict(response)
