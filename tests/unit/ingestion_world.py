"""The ingestion function's world hand-wired in moto (bucket with notifications, queue, topic,
tables, settings parameter), for the handler's unit tests: the function called directly with SQS
events the harness builds. The flow test of an upload burst runs on the synthesized stack instead
(bench/ingestion_burst.py, `IngestionStack`). Use inside `mock_aws()` and `running_engine()`.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import boto3

from bench.ingestion_burst import DEFAULT_PROJECTS, DrainReport, dataset_entries
from lambdas.common import aws, config
from lambdas.common.constants import (
    ENV_BUCKET,
    ENV_DATASET_POLL_SECONDS,
    ENV_IDEMPOTENCY_TABLE,
    ENV_INGESTION_FLUSH_DELAY,
    ENV_INGESTION_QUEUE_URL,
    ENV_LIFECYCLE_TOPIC,
    ENV_SETTINGS_PARAMETER,
    ENV_STATE_TABLE,
    INGESTION_FOLDERS,
    STATE_PK,
    STATE_SK,
)
from lambdas.common.settings import AppSettings, ProjectSettings


@dataclass
class FakeContext:
    """The parts of LambdaContext the handler and Powertools read."""

    remaining_ms: int = 300_000
    function_name: str = "ingestion"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ingestion"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class OfflineIngestion:
    """The ingestion function's world in moto: bucket with notifications, queue, topic, tables,
    settings parameter. Use inside `mock_aws()` and `running_engine()`."""

    def __init__(
        self,
        projects: dict[str, ProjectSettings] | None = None,
        flush_delay: int = 0,
        poll_seconds: float = 0.01,
        region: str = "us-east-1",
        s3_notifications: bool = True,
    ) -> None:
        self.projects = projects or DEFAULT_PROJECTS
        self.region = region
        self.s3 = boto3.client("s3", region_name=region)
        self.sqs = boto3.client("sqs", region_name=region)
        self.sns = boto3.client("sns", region_name=region)
        self.dynamodb = boto3.client("dynamodb", region_name=region)
        self.ssm = boto3.client("ssm", region_name=region)
        self.bucket = f"data-{uuid.uuid4().hex[:12]}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        self.queue_url = self.sqs.create_queue(QueueName=f"ingestion-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        if s3_notifications:
            from autopilot.local import s3_events

            s3_events.install()  # the records carry versionId and sequencer, as on AWS
            self._notify_queue(queue_arn)
        self.topic_arn = self.sns.create_topic(Name=f"lifecycle-{uuid.uuid4().hex[:8]}")["TopicArn"]
        self.events_url = self.sqs.create_queue(QueueName=f"events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        events_arn = self.sqs.get_queue_attributes(QueueUrl=self.events_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.sns.subscribe(
            TopicArn=self.topic_arn,
            Protocol="sqs",
            Endpoint=events_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        self.state_table = self._table("state", [(STATE_PK, "HASH"), (STATE_SK, "RANGE")])
        self.idempotency_table = self._table("idempotency", [("id", "HASH")])
        self.parameter = f"/autopilot/{uuid.uuid4().hex[:8]}/settings"
        self.ssm.put_parameter(
            Name=self.parameter, Type="String", Value=AppSettings(projects=self.projects).to_json()
        )
        self.environment = {
            ENV_BUCKET: self.bucket,
            ENV_LIFECYCLE_TOPIC: self.topic_arn,
            ENV_STATE_TABLE: self.state_table,
            ENV_IDEMPOTENCY_TABLE: self.idempotency_table,
            ENV_SETTINGS_PARAMETER: self.parameter,
            ENV_INGESTION_QUEUE_URL: self.queue_url,
            ENV_INGESTION_FLUSH_DELAY: str(flush_delay),
            ENV_DATASET_POLL_SECONDS: str(poll_seconds),
        }
        self._events: list[dict[str, Any]] = []
        self._sequence = 0
        self._discard_test_events()

    def _notify_queue(self, queue_arn: str) -> None:
        """The stack's notifications: one prefix filter per project and ingestion folder."""
        self.s3.put_bucket_notification_configuration(
            Bucket=self.bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": queue_arn,
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": f"{p}/{folder}/"}]}},
                    }
                    for p in self.projects
                    for folder in INGESTION_FOLDERS
                ]
            },
        )

    def _table(self, name: str, keys: list[tuple[str, str]]) -> str:
        table = f"{name}-{uuid.uuid4().hex[:8]}"
        self.dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
            BillingMode="PAY_PER_REQUEST",
        )
        return table

    def _discard_test_events(self) -> None:
        for message in self._receive(self.queue_url):
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def activate(self, monkeypatch: Any | None = None) -> None:
        """Points the handler at this world (environment, fresh clients and settings cache)."""
        import os

        from lambdas.ingestion import handler

        for name, value in self.environment.items():
            if monkeypatch is not None:
                monkeypatch.setenv(name, value)
            else:
                os.environ[name] = value
        aws.reset_clients()
        config.clear_cache()
        handler.reset_runtime()

    # -- uploads -----------------------------------------------------------------------------------
    def put(self, key: str, body: bytes) -> None:
        """Uploads; moto delivers the S3 notification to the queue (URL-encoded key, like S3)."""
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def upload(self, key: str, body: bytes) -> dict[str, Any]:
        """Uploads without going through moto's notifications (whose queue bookkeeping grows with
        the queue) and returns the SQS message S3 would send, in the AWS format."""
        response = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        self._sequence += 1
        event_time = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        record = {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": self.region,
            "eventTime": event_time,
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:EXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper()},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "ingestion",
                "bucket": {"name": self.bucket, "arn": f"arn:aws:s3:::{self.bucket}"},
                "object": {
                    "key": quote_plus(key, safe="/"),
                    "size": len(body),
                    "eTag": response["ETag"].strip('"'),
                    "versionId": response.get("VersionId"),
                    "sequencer": f"{self._sequence:018X}",
                },
            },
        }
        return {"Body": json.dumps({"Records": [record]}), "ReceiptHandle": uuid.uuid4().hex}

    # -- delivery ----------------------------------------------------------------------------------
    def _receive(self, queue_url: str) -> Iterator[dict[str, Any]]:
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=600
            ).get("Messages", [])
            if not messages:
                return
            yield from messages

    def take_messages(self) -> list[dict[str, Any]]:
        """Everything waiting in the ingestion queue, removed from it (the harness delivers it)."""
        taken = list(self._receive(self.queue_url))
        for start in range(0, len(taken), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(taken[start : start + 10])
                ],
            )
        return taken

    def sqs_record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": message.get("ReceiptHandle", "handle"),
            "body": message["Body"],
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": str(int(time.time() * 1000)),
                "SenderId": "s3",
                "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
            },
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{self.region}:123456789012:ingestion",
            "awsRegion": self.region,
        }

    def invoke(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        from lambdas.ingestion import handler

        event = {"Records": [self.sqs_record(m) for m in messages]}
        return dict(handler.handle(event, FakeContext()))

    def drain(
        self,
        *,
        batch_size: int = 100,
        duplicates: float = 0.0,
        shuffle: bool = False,
        seed: int = 1,
        max_rounds: int = 50,
    ) -> DrainReport:
        """Delivers queued messages (first S3 notifications, then the handler's own flush requests)
        until the queue is empty. Failed records are put back, like SQS would after the timeout."""
        rng = random.Random(seed)
        report = DrainReport()
        for _ in range(max_rounds):
            messages = self.take_messages()
            if not messages:
                return report
            copies = [m for m in messages if rng.random() < duplicates]
            messages = messages + copies
            if shuffle:
                rng.shuffle(messages)
            for start in range(0, len(messages), batch_size):
                batch = messages[start : start + batch_size]
                response = self.invoke(batch)
                report.invocations += 1
                report.records += len(batch)
                failed = response.get("batchItemFailures", [])
                report.failures += len(failed)
                for _failure in failed:
                    pass
                if failed:
                    raise AssertionError(f"records failed: {failed}")
        raise AssertionError(f"queue not drained after {max_rounds} rounds")

    # -- observations ------------------------------------------------------------------------------
    def events(self) -> list[dict[str, Any]]:
        """Lifecycle events published so far (cumulative)."""
        for message in self._receive(self.events_url):
            self._events.append(json.loads(message["Body"]))
            self.sqs.delete_message(QueueUrl=self.events_url, ReceiptHandle=message["ReceiptHandle"])
        return list(self._events)

    def dataset_entries(self, project: str, dataset_type: str) -> list[dict[str, Any]]:
        return dataset_entries(project, self.projects[project].feature, dataset_type)
