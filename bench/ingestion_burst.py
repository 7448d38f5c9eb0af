"""Burst of uploads through the real ingestion handler, offline (moto + the local engine).

    python -m bench.ingestion_burst [--uploads 10000] [--time-scale 0.0001]

Uploads N small images under <project>/train/<label>/, delivers the S3 notifications to the
handler in SQS batches (each message delivered twice, batches shuffled), drains the flush
requests the handler sends itself, and compares with the naive strategy (one UpdateDatasetEntries
per image, each waiting for UPDATE_COMPLETE) on the same lines. Reports calls against the lower
bound ceil(total line bytes / 5 MB), entries lost and duplicated, and wall times. Writes
bench/results/ingestion_burst.json.

`IngestionStack` runs the synthesized stack in the local runtime (the handler is the stack's
ingestion function, reached through the runtime's Lambda service and SQS poller); it is also the
harness of the ingestion burst integration test.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import struct
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdas.common import aws, config
from lambdas.common.constants import (
    OUTPUT_DATA_BUCKET,
    OUTPUT_INGESTION_QUEUE,
    OUTPUT_LIFECYCLE_TOPIC,
    OUTPUT_SETTINGS_PARAMETER,
)
from lambdas.common.settings import AppSettings, ProjectSettings

if TYPE_CHECKING:
    from autopilot.local.runtime import LocalRuntime

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
class DrainReport:
    invocations: int = 0
    records: int = 0
    failures: int = 0


# The demo's and tests' short ingestion debounce: flush requests are not delayed.
CONTEXT = {"ingestion": {"flush_delay_seconds": 0}}


class IngestionStack:
    """The ingestion function's world on the synthesized stack in the local runtime: its data
    bucket (whose notifications reach the ingestion queue), the ingestion queue and its event
    source mapping, the lifecycle topic, the tables and the settings parameter. The runtime's pump
    is not started: the caller delivers notifications (`invoke`) and drains the queue through the
    runtime's poller (`drain`). Use inside `running_engine()`; see `ingestion_stack`."""

    def __init__(self, runtime: LocalRuntime, projects: dict[str, ProjectSettings]) -> None:
        self.runtime = runtime
        self.projects = projects
        self.s3 = runtime.client("s3")
        self.sqs = runtime.client("sqs")
        self.bucket = runtime.output(OUTPUT_DATA_BUCKET)
        self.queue_url = runtime.output(OUTPUT_INGESTION_QUEUE)
        [self.mapping] = [m for m in runtime.mappings if m.queue_url == self.queue_url]
        runtime.client("ssm").put_parameter(
            Name=runtime.output(OUTPUT_SETTINGS_PARAMETER),
            Value=AppSettings(projects=projects).to_json(),
            Type="String",
            Overwrite=True,
        )
        config.clear_cache()
        self.events_url = self.sqs.create_queue(QueueName="bench-lifecycle-inbox")["QueueUrl"]
        events_arn = self.sqs.get_queue_attributes(QueueUrl=self.events_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        runtime.client("sns").subscribe(
            TopicArn=runtime.output(OUTPUT_LIFECYCLE_TOPIC),
            Protocol="sqs",
            Endpoint=events_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        self._events: list[dict[str, Any]] = []
        self.take_messages()  # the s3:TestEvent S3 sent when the notifications were configured

    @functools.cached_property
    def function_name(self) -> str:
        return self.mapping.function_name

    # -- uploads -----------------------------------------------------------------------------------
    def upload(self, key: str, body: bytes) -> dict[str, Any]:
        """Uploads and takes the notification S3 sent to the ingestion queue (the caller delivers it)."""
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        [message] = self.take_messages()
        return message

    def take_messages(self) -> list[dict[str, Any]]:
        """Everything visible in the ingestion queue, removed from it."""
        return self.runtime.poller.receive_and_delete(self.queue_url, maximum=1_000_000)

    # -- delivery ----------------------------------------------------------------------------------
    def invoke(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """One invocation of the stack's ingestion function with these messages, as its event
        source mapping builds the event."""
        event = {"Records": [self.runtime.poller.record(m, self.mapping.queue_arn) for m in messages]}
        record = self.runtime.lambdas.invoke(self.function_name, event)
        if record.error is not None:
            raise AssertionError(f"the ingestion function failed: {record.error}")
        return dict(record.result)

    def drain(self, max_seconds: float = 120.0) -> DrainReport:
        """Delivers what the queue holds (the function's own flush requests) through the runtime's
        poller, with the mapping's batch size and batching window, until the queue is empty."""
        report = DrainReport()
        deadline = time.monotonic() + max_seconds
        while self._depth():
            if time.monotonic() > deadline:
                raise AssertionError(f"ingestion queue not drained after {max_seconds} s")
            outcome = self.runtime.poller.poll(self.mapping, self.runtime.lambdas.invoke)
            if not outcome.handed:
                time.sleep(0.01)
                continue
            report.invocations += 1
            report.records += outcome.handed
            report.failures += outcome.failed
            if outcome.failed:
                raise AssertionError(f"{outcome.failed} records failed")
        return report

    def _depth(self) -> int:
        return self.runtime.poller.depth(self.queue_url)

    # -- observations ------------------------------------------------------------------------------
    def events(self) -> list[dict[str, Any]]:
        """Lifecycle events published so far (cumulative)."""
        for message in self.runtime.poller.receive_and_delete(self.events_url, maximum=1_000_000):
            self._events.append(json.loads(message["Body"]))
        return list(self._events)

    def dataset_entries(self, project: str, dataset_type: str) -> list[dict[str, Any]]:
        return dataset_entries(project, self.projects[project].feature, dataset_type)


def dataset_entries(project: str, feature: str, dataset_type: str) -> list[dict[str, Any]]:
    """Every entry of the project's dataset of that type, as the engine lists them."""
    client = aws.client("rekognition")
    projects = client.describe_projects(ProjectNames=[project], Features=[feature])["ProjectDescriptions"]
    if not projects:
        return []
    arn = next((d["DatasetArn"] for d in projects[0]["Datasets"] if d["DatasetType"] == dataset_type), None)
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


@contextmanager
def ingestion_stack(
    engine_url: str, projects: dict[str, ProjectSettings] | None = None
) -> Iterator[IngestionStack]:
    """The synthesized stack (cdk.json with `CONTEXT`) in the local runtime, reaching the engine."""
    from autopilot.local.runtime import running_stack
    from autopilot.local.template import synth_template

    with running_stack(
        synth_template(CONTEXT),
        extra_environment={"AWS_ENDPOINT_URL_REKOGNITION": engine_url},
        start_pump=False,
    ) as runtime:
        yield IngestionStack(runtime, projects or DEFAULT_PROJECTS)
    aws.reset_clients()
    config.clear_cache()


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
    from autopilot.engine.testing import running_engine
    from lambdas.ingestion import chunking
    from lambdas.ingestion.datasets import DatasetGateway
    from lambdas.ingestion.lines import image_line

    project = "digits"
    image = png_bytes()
    keys = _keys(uploads, project, labels=10)
    with running_engine(time_scale=time_scale) as engine, ingestion_stack(engine.url) as world:
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
        flush_report = world.drain()
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
