"""Detection handler pieces with fakes: notifications parsed, deferrals and start requests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lambdas.common.config import DetectionEnvironment
from lambdas.common.settings import AppSettings, ProjectSettings
from lambdas.detection.deferral import DeferralInfo
from lambdas.detection.detect import ModelNotReady, NoProductionVersion, Throttled
from lambdas.detection.run import BatchRun, images_of, process_record

SETTINGS = AppSettings(projects={"digits": ProjectSettings(model_poll_seconds=45)})


@dataclass
class FakeStore:
    previous_deferral: float | None = None
    deferrals: list[float] = field(default_factory=list)
    detections: list[float] = field(default_factory=list)

    def record_deferral(self, project: str, at: float) -> float | None:
        self.deferrals.append(at)
        return self.previous_deferral

    def record_detection(self, project: str, at: float) -> None:
        self.detections.append(at)


@dataclass
class FakeRequeuer:
    sent: list[tuple[str, DeferralInfo, int]] = field(default_factory=list)

    def requeue(self, body: str, info: DeferralInfo, *, now: float, delay_seconds: int) -> None:
        self.sent.append((body, info, delay_seconds))


@dataclass
class FakeRequester:
    projects: list[str] = field(default_factory=list)

    def request_start(self, project: str) -> None:
        self.projects.append(project)


def batch(previous_deferral: float | None = None) -> BatchRun:
    environment = DetectionEnvironment.model_validate(
        {
            "DETECTIONS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:detections",
            "STATE_TABLE_NAME": "state",
            "IDEMPOTENCY_TABLE_NAME": "idempotency",
            "DETECTION_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/detection",
        }
    )
    return BatchRun(
        environment=environment,
        settings=SETTINGS,
        service=None,  # type: ignore[arg-type]
        store=FakeStore(previous_deferral),  # type: ignore[arg-type]
        requeuer=FakeRequeuer(),  # type: ignore[arg-type]
        requester=FakeRequester(),  # type: ignore[arg-type]
        now=1000.0,
    )


def record(body: dict[str, Any], attributes: dict[str, Any] | None = None) -> SQSRecord:
    return SQSRecord({"messageId": "m1", "body": json.dumps(body), "messageAttributes": attributes or {}})


NOTIFICATION = {
    "Records": [
        {
            "s3": {
                "bucket": {"name": "data"},
                "object": {"key": "digits/inference/a+b%281%29.png", "versionId": "v1", "eTag": "e1"},
            }
        },
        {"s3": {"bucket": {"name": "data"}, "object": {"key": "digits/train/x/y.png", "eTag": "e2"}}},
    ]
}


def test_notification_keys_are_decoded_and_other_folders_skipped() -> None:
    [image] = images_of(NOTIFICATION)
    assert (image.bucket, image.key, image.version_id, image.etag) == (
        "data",
        "digits/inference/a b(1).png",
        "v1",
        "e1",
    )


def test_s3_test_event_is_acknowledged_without_work() -> None:
    run = batch()
    process_record(record({"Service": "Amazon S3", "Event": "s3:TestEvent"}), run)
    assert run.requeuer.sent == []  # type: ignore[attr-defined]


def test_not_ready_defers_with_the_poll_delay_and_asks_for_one_start_per_batch() -> None:
    # Given the last deferral marker is old
    run = batch(previous_deferral=900.0)
    message = record(NOTIFICATION, {"autopilot_deferrals": {"stringValue": "2", "dataType": "Number"}})
    # When two images of the batch find the model not ready
    run.defer(message, "digits", ModelNotReady("stopped"))
    run.defer(message, "digits", ModelNotReady("stopped"))
    # Then both wait model_poll_seconds, the marker is written once and one start is requested
    assert [sent[2] for sent in run.requeuer.sent] == [45, 45]  # type: ignore[attr-defined]
    assert run.requeuer.sent[0][1].count == 2  # type: ignore[attr-defined]
    assert run.store.deferrals == [1000.0]  # type: ignore[attr-defined]
    assert run.requester.projects == ["digits"]  # type: ignore[attr-defined]


def test_recent_marker_means_no_new_start_request() -> None:
    run = batch(previous_deferral=990.0)
    run.defer(record(NOTIFICATION), "digits", ModelNotReady("stopped"))
    assert run.requester.projects == []  # type: ignore[attr-defined]


def test_throttling_and_missing_production_wait_without_start_requests() -> None:
    run = batch()
    run.defer(record(NOTIFICATION), "digits", Throttled("slow down"))
    run.defer(record(NOTIFICATION), "digits", NoProductionVersion("none yet"))
    assert run.requeuer.sent[0][2] <= 10  # type: ignore[attr-defined]
    assert run.requeuer.sent[1][2] == 45  # type: ignore[attr-defined]
    assert run.requester.projects == []  # type: ignore[attr-defined]
    assert run.store.deferrals == []  # type: ignore[attr-defined]


def test_detections_are_recorded_once_per_project_and_batch() -> None:
    run = batch()
    run.classified("digits", {"status": "CLASSIFIED"})
    run.classified("digits", {"status": "ERROR"})
    assert run.store.detections == [1000.0]  # type: ignore[attr-defined]
