"""Burst of uploads through the real ingestion handler, offline (moto + the local engine).

    python -m bench.ingestion_burst [--uploads 10000] [--time-scale 0.0001]

Uploads N small images under <project>/train/<label>/, delivers the S3 notifications to the
handler in SQS batches (each message delivered twice, batches shuffled), drains the flush
requests the handler sends itself, and compares with the naive strategy (one UpdateDatasetEntries
per image, each waiting for UPDATE_COMPLETE) on the same lines. Reports calls against the lower
bound ceil(total line bytes / 5 MB), entries lost and duplicated, and wall times. Writes
bench/results/ingestion_burst.json.

`OfflineIngestion` is also the harness of the ingestion integration and handler tests.
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3

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

RESULTS = Path(__file__).resolve().parent / "results" / "ingestion_burst.json"
DEFAULT_PROJECTS = {
    "digits": ProjectSettings(),
    "moderation": ProjectSettings(feature="CONTENT_MODERATION"),
}


def png_bytes(width: int = 64, height: int = 64, shade: int = 0) -> bytes:
    """A valid grayscale PNG without Pillow (the ingestion function reads only its header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes([shade % 256]) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


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


@dataclass
class DrainReport:
    invocations: int = 0
    records: int = 0
    failures: int = 0


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
        client = aws.client("rekognition")
        feature = self.projects[project].feature
        projects = client.describe_projects(ProjectNames=[project], Features=[feature])["ProjectDescriptions"]
        if not projects:
            return []
        arn = next(
            (d["DatasetArn"] for d in projects[0]["Datasets"] if d["DatasetType"] == dataset_type), None
        )
        if arn is None:
            return []
        entries: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {"DatasetArn": arn, "MaxResults": 100}
        while True:
            page = client.list_dataset_entries(**arguments)
            entries.extend(json.loads(line) for line in page.get("DatasetEntries", []))
            if not page.get("NextToken"):
                return entries
            arguments["NextToken"] = page["NextToken"]


# ---------------------------------------------------------------------------
# Benchmark
# ---------------------------------------------------------------------------


def _keys(count: int, project: str, labels: int) -> list[str]:
    return [f"{project}/train/{i % labels}/image {i:05d}.png" for i in range(count)]


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run(
    uploads: int, time_scale: float, batch_size: int, seed: int, duplicates: float, naive_sample: int
) -> dict[str, Any]:
    from moto import mock_aws

    from autopilot.engine.testing import running_engine
    from lambdas.ingestion import chunking
    from lambdas.ingestion.datasets import DatasetGateway
    from lambdas.ingestion.lines import image_line

    project = "digits"
    image = png_bytes()
    keys = _keys(uploads, project, labels=10)
    with mock_aws(), running_engine(time_scale=time_scale):
        world = OfflineIngestion(s3_notifications=False)
        world.activate()
        calls = {"UpdateDatasetEntries": 0}

        def count(**_: Any) -> None:
            calls["UpdateDatasetEntries"] += 1

        # Counted on the client the handler uses, independently of what the handler reports.
        aws.client("rekognition").meta.events.register("before-call.rekognition.UpdateDatasetEntries", count)

        upload_started = time.perf_counter()
        messages = [world.upload(key, image) for key in keys]
        upload_seconds = time.perf_counter() - upload_started

        # Batched strategy: the real handler; a share of notifications delivered twice, all shuffled.
        rng = random.Random(seed)
        deliveries = messages + [m for m in messages if rng.random() < duplicates]
        rng.shuffle(deliveries)
        started, cpu_started = time.perf_counter(), time.process_time()
        invocations = 0
        for batch in _chunks(deliveries, batch_size):
            response = world.invoke(batch)
            invocations += 1
            assert not response.get("batchItemFailures"), response
        flush_report = world.drain(batch_size=batch_size)
        batched_seconds = time.perf_counter() - started
        batched_cpu = time.process_time() - cpu_started
        batched_calls = calls["UpdateDatasetEntries"]
        reported_calls = sum(
            e["detail"]["update_calls"] for e in world.events() if e["type"] == "entries.applied"
        )

        refs = [e["source-ref"] for e in world.dataset_entries(project, "TRAIN")]
        expected = {f"s3://{world.bucket}/{key}" for key in keys}
        lost = len(expected - set(refs))
        duplicated = len(refs) - len(set(refs))
        unexpected = len(set(refs) - expected)
        # The same lines the handler built (same creation-date format, so the same byte counts).
        lines = [image_line(f"s3://{world.bucket}/{k}", k.split("/")[2], datetime.now(UTC)) for k in keys]
        lower_bound = chunking.lower_bound(lines)
        total_bytes = chunking.payload_bytes(lines)

        # Naive strategy on the same lines: one call per image, each waiting for completion.
        client = aws.client("rekognition")
        naive_project = client.create_project(ProjectName="naive")["ProjectArn"]
        dataset = client.create_dataset(ProjectArn=naive_project, DatasetType="TRAIN")["DatasetArn"]
        gateway = DatasetGateway(poll_seconds=max(0.001, 30.0 * time_scale / 4))
        gateway.wait_until_idle(dataset, time.monotonic() + 60)
        sample = lines[: naive_sample or len(lines)]
        before = calls["UpdateDatasetEntries"]
        naive_started, naive_cpu_started = time.perf_counter(), time.process_time()
        for line in sample:
            gateway.update_entries(dataset, chunking.encode([line]), time.monotonic() + 60)
        naive_seconds = (time.perf_counter() - naive_started) * len(lines) / len(sample)
        naive_cpu = (time.process_time() - naive_cpu_started) * len(lines) / len(sample)
        naive_calls = (calls["UpdateDatasetEntries"] - before) * len(lines) // len(sample)
        naive_entries = client.describe_dataset(DatasetArn=dataset)["DatasetDescription"]["DatasetStats"]

    update_seconds = 30.0  # the engine's unscaled dataset-update duration: the service's order of magnitude
    return {
        "uploads": uploads,
        "deliveries": len(deliveries),
        "batch_size": batch_size,
        "time_scale": time_scale,
        "total_line_bytes": total_bytes,
        "lower_bound_calls": lower_bound,
        "batched": {
            "update_calls": batched_calls,
            "update_calls_reported": reported_calls,
            "handler_invocations": invocations + flush_report.invocations,
            "wall_seconds": round(batched_seconds, 2),
            "cpu_seconds": round(batched_cpu, 2),
            "entries": len(refs),
            "lost": lost,
            "duplicated": duplicated,
            "unexpected": unexpected,
            "modelled_update_hours": round(batched_calls * update_seconds / 3600, 3),
        },
        "naive": {
            "update_calls": naive_calls,
            "wall_seconds": round(naive_seconds, 2),
            "cpu_seconds": round(naive_cpu, 2),
            "measured_lines": len(sample),
            "entries_in_measured_dataset": naive_entries.get("TotalEntries"),
            "modelled_update_hours": round(naive_calls * update_seconds / 3600, 1),
        },
        "upload_seconds": round(upload_seconds, 2),
    }


def print_table(result: dict[str, Any]) -> None:
    batched, naive = result["batched"], result["naive"]
    rows = [
        ("strategy", "calls", "lower bound", "lost", "duplicated", "wall s", "cpu s", "modelled update h"),
        (
            "batched (handler)",
            batched["update_calls"],
            result["lower_bound_calls"],
            batched["lost"],
            batched["duplicated"],
            batched["wall_seconds"],
            batched["cpu_seconds"],
            batched["modelled_update_hours"],
        ),
        (
            "naive (1 per image)" + ("" if naive["measured_lines"] == result["uploads"] else " *"),
            naive["update_calls"],
            result["lower_bound_calls"],
            "-",
            "-",
            naive["wall_seconds"],
            naive["cpu_seconds"],
            naive["modelled_update_hours"],
        ),
    ]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(
        f"{result['uploads']} uploads, {result['deliveries']} deliveries (duplicates included, shuffled), "
        f"{result['total_line_bytes']} line bytes, time scale {result['time_scale']}"
    )
    if naive["measured_lines"] != result["uploads"]:
        print(f"* naive timed on the first {naive['measured_lines']} lines, scaled to all")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=10_000)
    parser.add_argument("--time-scale", type=float, default=0.0001)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--duplicates", type=float, default=0.2, help="fraction of notifications delivered twice"
    )
    parser.add_argument(
        "--naive-sample",
        type=int,
        default=1000,
        help="time the naive strategy on the first N lines and scale to all (0: all lines)",
    )
    args = parser.parse_args(argv)
    import os

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Bench")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "bench")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    result = run(
        args.uploads, args.time_scale, args.batch_size, args.seed, args.duplicates, args.naive_sample
    )
    print_table(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {RESULTS}")
    return 0 if result["batched"]["lost"] == 0 and result["batched"]["duplicated"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
