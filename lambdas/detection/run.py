"""One SQS batch of detection messages: classify every inference image, or defer its message.

Per message: classify every image (idempotent per bucket/key/version). When the model is not
RUNNING, or Rekognition throttles, the message goes back to the queue with a delay and is
acknowledged (no receive count spent); for a model that is not running, the project's SERVING
item gets a deferral marker and the controller is asked for a pass (policy.py decides the delays).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from lambdas.common import aws
from lambdas.common.config import DetectionEnvironment
from lambdas.common.constants import (
    DETECTION_STATUS_ERROR,
    METRIC_IMAGE_ERRORS,
    METRIC_IMAGES_CLASSIFIED,
    METRIC_IMAGES_DEFERRED,
)
from lambdas.common.production import get_production
from lambdas.common.settings import AppSettings
from lambdas.detection.deferral import ControlRequester, Requeuer
from lambdas.detection.detect import (
    Detector,
    ImageRef,
    ModelNotReady,
    NoProductionVersion,
    NotAnInferenceImage,
    Throttled,
    image_from_notification,
)
from lambdas.detection.policy import DeferralInfo, deferral_delay, start_request_due
from lambdas.detection.results import ResultSink
from lambdas.detection.service import DetectionService
from lambdas.serving.state import ServingStore

logger = Logger(child=True)
metrics = Metrics()  # shares the handler's metric set

IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600


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
        throttled = isinstance(reason, Throttled | IdempotencyAlreadyInProgressError)
        delay = deferral_delay(self.settings, project, throttled=throttled, count=info.count)
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
        if start_request_due(self.store.record_deferral(project, self.now), self.now):
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
