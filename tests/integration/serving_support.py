"""Offline harness of the serving and detection tests: moto resources shaped like the stack, the
real start/stop state machine definition, a trained digits model on the local engine, a fake
clock, and an SQS poller that feeds the detection handler the way the event source mapping does.
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

from infra.constructs.serving import render_definition
from lambdas.common import aws, config
from lambdas.common.constants import (
    ENV_DETECTION_QUEUE_URL,
    ENV_DETECTIONS_TOPIC,
    ENV_EVENT_BUS,
    ENV_IDEMPOTENCY_TABLE,
    ENV_LIFECYCLE_TOPIC,
    ENV_MODEL_CONTROL_STATE_MACHINE,
    ENV_SETTINGS_PARAMETER,
    ENV_STATE_TABLE,
    INFERENCE_FOLDER,
    STATE_PK,
    STATE_SK,
)
from lambdas.common.production import ProductionRecord
from lambdas.common.settings import AppSettings, ProjectSettings
from lambdas.detection import handler as detection_handler
from lambdas.serving import controller
from tests.tables import create_state_table

REGION = "us-east-1"
BUCKET = "autopilot-data"
SFN_ROLE = "arn:aws:iam::123456789012:role/model-control"
# A Monday, 10:00 UTC.
MONDAY_10 = 1_795_428_000.0


class FakeClock:
    def __init__(self, start: float = MONDAY_10) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class OfflineStack:
    settings: AppSettings
    state_table: str
    idempotency_table: str
    queue_url: str
    queue_arn: str
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

    def environment(self) -> dict[str, str]:
        return {
            ENV_STATE_TABLE: self.state_table,
            ENV_IDEMPOTENCY_TABLE: self.idempotency_table,
            ENV_DETECTION_QUEUE_URL: self.queue_url,
            ENV_DETECTIONS_TOPIC: self.detections_topic,
            ENV_LIFECYCLE_TOPIC: self.lifecycle_topic,
            ENV_MODEL_CONTROL_STATE_MACHINE: self.state_machine_arn,
            ENV_SETTINGS_PARAMETER: self.settings_parameter,
            ENV_EVENT_BUS: "default",
        }

    # --- controller ---------------------------------------------------------------------------
    def tick(self, project: str) -> dict[str, Any]:
        outcome: dict[str, Any] = controller.handle(
            {"project": project, "trigger": "schedule"}, LambdaContext()
        )["outcomes"][0]
        return outcome

    def request(self, project: str, action: str, override_minutes: int | None = None) -> dict[str, Any]:
        detail: dict[str, Any] = {"project": project, "action": action}
        if override_minutes is not None:
            detail["override_minutes"] = override_minutes
        event = {"detail-type": "Autopilot Model Control Requested", "source": "custom-labels-autopilot"}
        outcome: dict[str, Any] = controller.handle({**event, "detail": detail}, LambdaContext())["outcomes"][
            0
        ]
        return outcome

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
        """Feeds available queue messages to the detection handler like the event source mapping.

        Returns (messages handed over, batch item failures). Successful messages are deleted;
        failed ones become visible again at once (the real mapping waits for the visibility timeout).
        Stops when the queue shows nothing visible, after `max_batches`, or once `limit` were handed.
        """
        handed, failed = 0, 0
        for _ in range(max_batches):
            if limit is not None and handed >= limit:
                break
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            event = {"Records": [self._record(message) for message in messages]}
            result = detection_handler.handle(event, LambdaContext())
            failures = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] in failures:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            handed += len(messages)
            failed += len(failures)
        return handed, failed

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {
            name: {"stringValue": value.get("StringValue"), "dataType": value["DataType"]}
            for name, value in (message.get("MessageAttributes") or {}).items()
        }
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": attributes,
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }

    def upload_inference(self, project: str, name: str, body: bytes) -> str:
        """Puts an image and delivers its S3 notification to the detection queue (as S3 would)."""
        key = f"{project}/{INFERENCE_FOLDER}/{name}"
        response = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        notification = s3_notification(
            BUCKET, key, response.get("VersionId"), response["ETag"].strip('"'), len(body)
        )
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(notification))
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
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])[
            "Attributes"
        ]
        return sum(
            int(attributes[name])
            for name in (
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            )
        )


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


def deploy(settings: AppSettings) -> OfflineStack:
    """Creates the stack's resources in moto (call inside mock_aws)."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    create_state_table(dynamodb, "state")
    dynamodb.create_table(
        TableName="idempotency",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sqs = boto3.client("sqs", region_name=REGION)
    dlq_url = sqs.create_queue(QueueName="detection-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName="detection",
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns = boto3.client("sns", region_name=REGION)
    topics, inboxes = {}, {}
    for name in ("lifecycle", "detections"):
        topics[name] = sns.create_topic(Name=name)["TopicArn"]
        inboxes[name] = sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inboxes[name], AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(
            TopicArn=topics[name],
            Protocol="sqs",
            Endpoint=inbox_arn,
            Attributes={"RawMessageDelivery": "false"},
        )
    sfn = boto3.client("stepfunctions", region_name=REGION)
    state_machine_arn = sfn.create_state_machine(
        name="model-control", definition=render_definition("state", topics["lifecycle"]), roleArn=SFN_ROLE
    )["stateMachineArn"]
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name="/autopilot/settings", Value=settings.to_json(), Type="String")
    return OfflineStack(
        settings=settings,
        state_table="state",
        idempotency_table="idempotency",
        queue_url=queue_url,
        queue_arn=queue_arn,
        lifecycle_topic=topics["lifecycle"],
        detections_topic=topics["detections"],
        lifecycle_inbox=inboxes["lifecycle"],
        detections_inbox=inboxes["detections"],
        state_machine_arn=state_machine_arn,
        settings_parameter="/autopilot/settings",
    )


def reset_caches() -> None:
    aws.reset_clients()
    config.clear_cache()
    controller.build_deps.cache_clear()
    detection_handler.idempotent_classify.cache_clear()


@contextmanager
def wired(stack: OfflineStack, monkeypatch: Any) -> Iterator[OfflineStack]:
    """Points the handlers at the offline stack and its fake clock."""
    for name, value in stack.environment().items():
        monkeypatch.setenv(name, value)
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
) -> tuple[str, str, str]:
    """Trains a small digits model on the engine; returns (project ARN, version ARN, version name)."""
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
        key = f"{project}/{kind.lower()}/{label}/{counts[label]}.png"
        s3.put_object(Bucket=BUCKET, Key=key, Body=png)
        lines[kind].append(
            json.dumps(
                {
                    "source-ref": f"s3://{BUCKET}/{key}",
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
        OutputConfig={"S3Bucket": BUCKET, "S3KeyPrefix": f"{project}/training-output"},
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


@contextmanager
def offline_world(
    monkeypatch: Any, settings: AppSettings, models: dict[str, str], time_scale: float = 0.01
) -> Iterator[World]:
    """moto (with Step Functions executing the real definition) + the local engine + trained models.

    `models` maps project name to feature; each gets a small digits model (or adapter) promoted
    to production. Models start out TRAINING_COMPLETED, i.e. not running.
    """
    from moto import mock_aws

    from autopilot.engine.testing import running_engine
    from autopilot.local.sdk_error_names import use_aws_error_names

    use_aws_error_names()
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        running_engine(time_scale=time_scale) as engine,
    ):
        stack = deploy(settings)
        rk = engine.client()
        versions = {}
        for project, feature in models.items():
            _, version_arn, version_name = train_model(rk, project, feature=feature, per_label=8)
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
