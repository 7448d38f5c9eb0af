"""The detection handler routes a model that is not ready (DetectCustomLabels answers
ResourceNotReadyException) back to the queue: the message is sent again with the poll delay, the
controller is asked for a start, and the record itself succeeds (no receive count spent)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.stub import Stubber

from lambdas.common import config
from lambdas.common.production import ProductionRecord
from lambdas.common.settings import AppSettings, ProjectSettings
from lambdas.detection import run as detection_run
from lambdas.detection.deferral import DeferralInfo
from lambdas.detection.detect import Detector
from lambdas.detection.service import DetectionService

SETTINGS = AppSettings(projects={"digits": ProjectSettings(model_poll_seconds=45)})
VERSION_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/digits/version/v1/2"
NOTIFICATION = {
    "Records": [
        {
            "s3": {
                "bucket": {"name": "data"},
                "object": {"key": "digits/inference/a.png", "versionId": "v1", "eTag": "e1"},
            }
        }
    ]
}


@dataclass
class Store:
    deferrals: list[float] = field(default_factory=list)
    detections: list[float] = field(default_factory=list)

    def record_deferral(self, project: str, at: float) -> float | None:
        self.deferrals.append(at)
        return None

    def record_detection(self, project: str, at: float) -> None:
        self.detections.append(at)


@dataclass
class Requeuer:
    sent: list[tuple[str, DeferralInfo, int]] = field(default_factory=list)

    def requeue(self, body: str, info: DeferralInfo, *, now: float, delay_seconds: int) -> None:
        self.sent.append((body, info, delay_seconds))


@dataclass
class Requester:
    projects: list[str] = field(default_factory=list)

    def request_start(self, project: str) -> None:
        self.projects.append(project)


class NoSink:
    def deliver(self, image: Any, result: dict[str, Any]) -> None:
        raise AssertionError("an image that waits has no result")


@pytest.fixture
def no_idempotency(monkeypatch: pytest.MonkeyPatch) -> None:
    """Classify directly (the idempotency layer is covered elsewhere and needs DynamoDB)."""
    monkeypatch.setattr(detection_run, "idempotent_classify", lambda table: detection_run._classify)


def test_a_stopped_model_sends_the_message_back_and_asks_for_a_start(no_idempotency: None) -> None:
    # Given DetectCustomLabels answers ResourceNotReadyException (the version is STOPPED)
    client = boto3.client("rekognition", region_name="us-east-1")
    production = ProductionRecord(
        project="digits",
        version_arn=VERSION_ARN,
        version_name="v1",
        f1_score=0.9,
        promoted_at="2026-11-21T18:00:00+00:00",
    )
    run = detection_run.BatchRun(
        environment=config.DetectionEnvironment.model_validate(
            {
                "DETECTIONS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:detections",
                "STATE_TABLE_NAME": "state",
                "IDEMPOTENCY_TABLE_NAME": "idempotency",
                "DETECTION_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/detection",
            }
        ),
        settings=SETTINGS,
        service=DetectionService(
            settings=SETTINGS,
            production=lambda project: production,
            detector=Detector(client),
            sink=NoSink(),  # type: ignore[arg-type]
        ),
        store=Store(),  # type: ignore[arg-type]
        requeuer=Requeuer(),  # type: ignore[arg-type]
        requester=Requester(),  # type: ignore[arg-type]
        now=1000.0,
    )
    body = json.dumps(NOTIFICATION)
    with Stubber(client) as stub:
        stub.add_client_error(
            "detect_custom_labels",
            service_error_code="ResourceNotReadyException",
            service_message="ProjectVersion is not ready (status STOPPED)",
            http_status_code=400,
        )
        # When the record is processed
        detection_run.process_record(
            SQSRecord({"messageId": "m1", "body": body, "messageAttributes": {}}), run
        )
        stub.assert_no_pending_responses()
    # Then the message went back with the model poll delay and a start was asked for
    [(sent_body, info, delay)] = run.requeuer.sent  # type: ignore[attr-defined]
    assert (sent_body, info.count, delay) == (body, 0, 45)
    assert run.requester.projects == ["digits"]  # type: ignore[attr-defined]
    assert run.store.deferrals == [1000.0]  # type: ignore[attr-defined]
    assert run.store.detections == []  # type: ignore[attr-defined]
