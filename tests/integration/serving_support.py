"""Offline harness of the serving and detection tests: the synthesized stack provisioned by the
local runtime (its detection queue and dead-letter queue, topics, tables, settings parameter and
the real model-control state machine), a trained digits model on the local engine, a fake clock for
the controller and detection, and the runtime's SQS poller feeding the detection function the way
its event source mapping does. The runtime's pump is not started: the tests tick the controller
and poll the detection queue themselves, in the order they want to observe.
"""

from __future__ import annotations

import functools
import io
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import numpy as np
from PIL import Image

from autopilot.local.runtime import LocalRuntime, running_stack
from autopilot.local.template import synth_template
from autopilot.local.wiring import EventSourceMapping
from lambdas.common import aws, config
from lambdas.common.constants import (
    INFERENCE_FOLDER,
    OUTPUT_DATA_BUCKET,
    OUTPUT_DETECTION_DEAD_LETTER_QUEUE,
    OUTPUT_DETECTION_QUEUE,
    OUTPUT_DETECTIONS_TOPIC,
    OUTPUT_LIFECYCLE_TOPIC,
    OUTPUT_MODEL_CONTROL_STATE_MACHINE,
    OUTPUT_SETTINGS_PARAMETER,
    OUTPUT_STATE_TABLE,
    STATE_PK,
    STATE_SK,
)
from lambdas.common.production import ProductionRecord
from lambdas.common.settings import AppSettings, ProjectSettings
from lambdas.detection import handler as detection_handler
from lambdas.serving import controller

REGION = "us-east-1"
BUCKET = "autopilot-data"  # the engine's training data bucket of tests that run no stack
# A Monday, 10:00 UTC.
MONDAY_10 = 1_795_428_000.0
CONTROLLER_HANDLER = "lambdas.serving.controller."
DETECTION_HANDLER = "lambdas.detection.handler."


class FakeClock:
    def __init__(self, start: float = MONDAY_10) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class OfflineStack:
    runtime: LocalRuntime
    settings: AppSettings
    bucket: str
    state_table: str
    queue_url: str
    dead_letter_url: str
    lifecycle_topic: str
    detections_topic: str
    lifecycle_inbox: str  # SQS queue subscribed to the lifecycle topic
    detections_inbox: str  # SQS queue subscribed to the detections topic
    state_machine_arn: str
    settings_parameter: str
    clock: FakeClock = field(default_factory=FakeClock)

    @functools.cached_property
    def s3(self) -> Any:
        return boto3.client("s3", region_name=REGION)

    @functools.cached_property
    def sqs(self) -> Any:
        return boto3.client("sqs", region_name=REGION)

    @functools.cached_property
    def dynamodb(self) -> Any:
        return boto3.client("dynamodb", region_name=REGION)

    def _function(self, handler_prefix: str) -> str:
        names = [f.name for f in self.runtime.lambdas.functions() if f.handler.startswith(handler_prefix)]
        assert len(names) == 1, f"expected one function with a handler in {handler_prefix}: {names}"
        return names[0]

    @functools.cached_property
    def detection_mapping(self) -> EventSourceMapping:
        [mapping] = [m for m in self.runtime.mappings if m.queue_url == self.queue_url]
        return mapping

    # --- controller ---------------------------------------------------------------------------
    def _control(self, event: dict[str, Any]) -> dict[str, Any]:
        record = self.runtime.lambdas.invoke(self._function(CONTROLLER_HANDLER), event)
        assert record.error is None, f"the controller failed: {record.error}"
        outcome: dict[str, Any] = record.result["outcomes"][0]
        return outcome

    def tick(self, project: str) -> dict[str, Any]:
        return self._control({"project": project, "trigger": "schedule"})

    def request(self, project: str, action: str, override_minutes: int | None = None) -> dict[str, Any]:
        detail: dict[str, Any] = {"project": project, "action": action}
        if override_minutes is not None:
            detail["override_minutes"] = override_minutes
        event = {"detail-type": "Autopilot Model Control Requested", "source": "custom-labels-autopilot"}
        return self._control({**event, "detail": detail})

    def wait_transition(self, project: str, timeout: float = 60.0) -> str:
        """Waits (real time, bounded) until the state machine released the transition lock."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            item = self.serving_item(project)
            if "transition" not in item:
                return str(item.get("model_status", {}).get("S", ""))
            time.sleep(0.1)
        raise AssertionError(f"transition of {project} still in progress after {timeout} s: {item}")

    def serving_item(self, project: str) -> dict[str, Any]:
        key = {STATE_PK: {"S": f"PROJECT#{project}"}, STATE_SK: {"S": "SERVING"}}
        item: dict[str, Any] = self.dynamodb.get_item(TableName=self.state_table, Key=key).get("Item", {})
        return item

    # --- detection ----------------------------------------------------------------------------
    def poll_detection(self, max_batches: int = 50, limit: int | None = None) -> tuple[int, int]:
        """Feeds available queue messages to the detection function through the runtime's poller
        (the event source mapping of the template: batch size, batching window, item failures).

        Returns (messages handed over, batch item failures). Successful messages are deleted;
        failed ones become visible again after the visibility timeout on the runtime's clock (in
        about two real seconds). Stops when the queue shows nothing visible, after `max_batches`
        batches, or once `limit` were handed.
        """
        handed, failed, batches = 0, 0, 0
        deadline = time.monotonic() + 60
        while batches < max_batches and time.monotonic() < deadline:
            if limit is not None and handed >= limit:
                break
            outcome = self.runtime.poller.poll(self.detection_mapping, self.runtime.lambdas.invoke)
            if outcome.handed == 0:
                if self._visible() == 0:
                    break
                time.sleep(0.002)  # a partial batch waits for the batching window
                continue
            batches += 1
            handed += outcome.handed
            failed += outcome.failed
        return handed, failed

    def _visible(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def upload_inference(self, project: str, name: str, body: bytes) -> str:
        """Puts an image; the bucket's notification (as the stack configures it) reaches the queue."""
        key = f"{project}/{INFERENCE_FOLDER}/{name}"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return key

    def drain(self, queue_url: str) -> list[dict[str, Any]]:
        """All messages of an inbox queue (SNS envelopes parsed), deleted as read."""
        found = []
        for _ in range(1000):
            response = self.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return found

    def queue_depth(self) -> int:
        return self.runtime.poller.depth(self.queue_url)

    def dead_letter_depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.dead_letter_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])


def s3_notification(bucket: str, key: str, version_id: str | None, etag: str, size: int) -> dict[str, Any]:
    from urllib.parse import quote_plus

    s3_object: dict[str, Any] = {
        "key": quote_plus(key, safe="/"),
        "size": size,
        "eTag": etag,
        "sequencer": "0A1B",
    }
    if version_id:
        s3_object["versionId"] = version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": "2026-11-23T10:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "inference",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": s3_object,
                },
            }
        ]
    }


def fast_settings(**overrides: Any) -> AppSettings:
    """Fast settings: one-second polls and redelivery, one-minute idle timeout."""
    fast = {"model_poll_seconds": 1, "idle_minutes": 1, "start_retry_limit": 1, "review_confidence": 60.0}
    digits = ProjectSettings(**{**fast, **overrides})
    moderation = ProjectSettings(feature="CONTENT_MODERATION", **fast)
    return AppSettings(projects={"digits": digits, "moderation": moderation}, controller_rate_minutes=1)


def _inbox(runtime: LocalRuntime, topic_arn: str, name: str) -> str:
    """A queue of the test's own subscribed to one of the stack's topics (SNS envelopes)."""
    sqs = runtime.client("sqs")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    runtime.client("sns").subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "false"}
    )
    return url


def deploy(runtime: LocalRuntime, settings: AppSettings) -> OfflineStack:
    """The provisioned stack as the tests use it, with `settings` in its settings parameter."""
    parameter = runtime.output(OUTPUT_SETTINGS_PARAMETER)
    runtime.client("ssm").put_parameter(
        Name=parameter, Value=settings.to_json(), Type="String", Overwrite=True
    )
    lifecycle, detections_topic = (
        runtime.output(OUTPUT_LIFECYCLE_TOPIC),
        runtime.output(OUTPUT_DETECTIONS_TOPIC),
    )
    stack = OfflineStack(
        runtime=runtime,
        settings=settings,
        bucket=runtime.output(OUTPUT_DATA_BUCKET),
        state_table=runtime.output(OUTPUT_STATE_TABLE),
        queue_url=runtime.output(OUTPUT_DETECTION_QUEUE),
        dead_letter_url=runtime.output(OUTPUT_DETECTION_DEAD_LETTER_QUEUE),
        lifecycle_topic=lifecycle,
        detections_topic=detections_topic,
        lifecycle_inbox=_inbox(runtime, lifecycle, "test-lifecycle-inbox"),
        detections_inbox=_inbox(runtime, detections_topic, "test-detections-inbox"),
        state_machine_arn=runtime.output(OUTPUT_MODEL_CONTROL_STATE_MACHINE),
        settings_parameter=parameter,
    )
    # S3 sent its s3:TestEvent to the detection queue when the notifications were configured; the
    # function takes it (and ignores it) before the test begins, as it would right after a deploy.
    stack.poll_detection()
    return stack


def reset_caches() -> None:
    aws.reset_clients()
    config.clear_cache()
    controller.build_deps.cache_clear()
    detection_handler.idempotent_classify.cache_clear()


@contextmanager
def wired(stack: OfflineStack, monkeypatch: Any) -> Iterator[OfflineStack]:
    """Gives the controller and detection the stack's fake clock."""
    monkeypatch.setattr(controller, "clock", stack.clock)
    monkeypatch.setattr(detection_handler, "clock", stack.clock)
    reset_caches()
    try:
        yield stack
    finally:
        reset_caches()


# --- models on the local engine ------------------------------------------------------------------
def digit_png(image8: np.ndarray, side: int = 64) -> bytes:
    """An sklearn 8x8 digit (ink 0..16) rendered dark on white at side x side px."""
    array = (255 - image8 * 15).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(array).resize((side, side), Image.Resampling.BILINEAR).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def digits(labels: tuple[int, ...] = (0, 1, 2)) -> list[tuple[str, bytes]]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return [
        (str(target), digit_png(image))
        for image, target in zip(data.images, data.target, strict=True)
        if target in labels
    ]


def _wait(describe: Callable[[], str], leaving: tuple[str, ...], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    status = describe()
    while status in leaving:
        if time.monotonic() > deadline:
            raise AssertionError(f"still {status} after {timeout} s")
        time.sleep(0.05)
        status = describe()
    return status


def train_model(
    rk: Any,
    project: str,
    feature: str = "CUSTOM_LABELS",
    per_label: int = 12,
    labels: tuple[int, ...] = (0, 1, 2),
    bucket: str = BUCKET,
) -> tuple[str, str, str]:
    """Trains a small digits model on the engine; returns (project ARN, version ARN, version name).

    Its images lie outside every project prefix, so no notification of the stack sees them."""
    s3 = boto3.client("s3", region_name=REGION)
    create: dict[str, Any] = {"ProjectName": project}
    if feature == "CONTENT_MODERATION":
        create.update(Feature="CONTENT_MODERATION", AutoUpdate="DISABLED")
    project_arn = rk.create_project(**create)["ProjectArn"]
    images = digits(labels)
    lines: dict[str, list[str]] = {"TRAIN": [], "TEST": []}
    counts: dict[str, int] = {}
    for label, png in images:
        counts[label] = counts.get(label, 0) + 1
        if counts[label] > per_label + 4:
            continue
        kind = "TRAIN" if counts[label] <= per_label else "TEST"
        key = f"fixtures/{project}/{kind.lower()}/{label}/{counts[label]}.png"
        s3.put_object(Bucket=bucket, Key=key, Body=png)
        lines[kind].append(
            json.dumps(
                {
                    "source-ref": f"s3://{bucket}/{key}",
                    "label": 1,
                    "label-metadata": {
                        "confidence": 1,
                        "class-name": label,
                        "human-annotated": "yes",
                        "creation-date": "2026-11-01T00:00:00",
                        "type": "groundtruth/image-classification",
                    },
                }
            )
        )
    for kind, dataset_lines in lines.items():
        dataset_arn = rk.create_dataset(ProjectArn=project_arn, DatasetType=kind)["DatasetArn"]
        _wait(
            lambda arn=dataset_arn: rk.describe_dataset(DatasetArn=arn)["DatasetDescription"]["Status"],
            ("CREATE_IN_PROGRESS",),
            30,
        )
        rk.update_dataset_entries(
            DatasetArn=dataset_arn, Changes={"GroundTruth": "\n".join(dataset_lines).encode()}
        )
        status = _wait(
            lambda arn=dataset_arn: rk.describe_dataset(DatasetArn=arn)["DatasetDescription"]["Status"],
            ("UPDATE_IN_PROGRESS",),
            30,
        )
        assert status == "UPDATE_COMPLETE", status
    version_arn = rk.create_project_version(
        ProjectArn=project_arn,
        VersionName="v1",
        OutputConfig={"S3Bucket": bucket, "S3KeyPrefix": f"{project}/training-output"},
    )["ProjectVersionArn"]
    status = _wait(
        lambda: rk.describe_project_versions(ProjectArn=project_arn, VersionNames=["v1"])[
            "ProjectVersionDescriptions"
        ][0]["Status"],
        ("TRAINING_IN_PROGRESS",),
        120,
    )
    assert status == "TRAINING_COMPLETED", status
    return project_arn, version_arn, "v1"


def put_production(stack: OfflineStack, project: str, version_arn: str, version_name: str) -> None:
    record = ProductionRecord(
        project=project,
        version_arn=version_arn,
        version_name=version_name,
        f1_score=0.95,
        promoted_at="2026-11-23T09:00:00+00:00",
    )
    stack.dynamodb.put_item(TableName=stack.state_table, Item=record.to_attribute_values())


@dataclass
class World:
    stack: OfflineStack
    engine: Any
    versions: dict[str, str]  # project -> production version (or adapter) ARN


@functools.cache
def _template() -> str:
    """The app's template, synthesized once per process (as cdk.json defines the stack)."""
    import tempfile

    return json.dumps(synth_template(outdir=tempfile.mkdtemp(prefix="serving-cdk-")))


@contextmanager
def offline_world(
    monkeypatch: Any, settings: AppSettings, models: dict[str, str], time_scale: float = 0.01
) -> Iterator[World]:
    """The synthesized stack in the local runtime (moto executes its state machines, their
    Rekognition tasks reach the local engine) + trained models.

    `models` maps project name to feature; each gets a small digits model (or adapter) promoted
    to production. Models start out TRAINING_COMPLETED, i.e. not running.
    """
    from autopilot.engine.testing import running_engine

    with (
        running_engine(time_scale=time_scale) as engine,
        running_stack(
            json.loads(_template()),
            # The runtime's clock runs as fast as the engine: the detection queue's 5 s batching
            # window and the state machine's waits pass in the same scaled time as a model start.
            clock_speed=1 / time_scale,
            extra_environment={"AWS_ENDPOINT_URL_REKOGNITION": engine.url},
            start_pump=False,
        ) as runtime,
    ):
        stack = deploy(runtime, settings)
        rk = engine.client()
        versions = {}
        for project, feature in models.items():
            _, version_arn, version_name = train_model(
                rk, project, feature=feature, per_label=8, bucket=stack.bucket
            )
            put_production(stack, project, version_arn, version_name)
            versions[project] = version_arn
        with wired(stack, monkeypatch):
            yield World(stack, engine, versions)


def lifecycle_types(stack: OfflineStack, project: str, expected: int = 0, timeout: float = 30.0) -> list[str]:
    """Event types published on the lifecycle topic for a project, in publication order.

    Waits (bounded, real time) until at least `expected` arrived: the state machine publishes
    right after it releases the transition lock.
    """
    found: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        events = [json.loads(envelope["Message"]) for envelope in stack.drain(stack.lifecycle_inbox)]
        found.extend(event["type"] for event in events if event["project"] == project)
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def detections(stack: OfflineStack) -> list[dict[str, Any]]:
    """Detection results published on the detections topic, with their message attributes."""
    found = []
    for envelope in stack.drain(stack.detections_inbox):
        result = json.loads(envelope["Message"])
        result["_attributes"] = {
            name: value["Value"] for name, value in envelope["MessageAttributes"].items()
        }
        found.append(result)
    return found
