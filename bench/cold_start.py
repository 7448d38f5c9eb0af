"""Cold start of each Lambda handler, as ratios against the boto3 + Powertools floor of the same run.

    python -m bench.cold_start [--repeats 5] [--out bench/results/cold_start.json]

Every measurement runs in a fresh Python process (a cold container), `--repeats` times; the
median is reported. In each process:

* import   the time to import the handler module (for the floor: `boto3` and Powertools'
           Logger and Metrics, what every handler needs at the least);
* first    the first invocation on a representative event, under moto (in process; moto is
           imported and the resources are created before the clock starts): the controller's
           scheduled tick for a project without a production version, detection of one image that
           must wait for the model (idempotency record, state table, requeue), ingestion of one
           uploaded training image (ranged GET of its header, staging, flush request). The floor's
           first invocation creates a Session and one client and makes one DynamoDB call.

The ratios (handler / floor, both from the same run on the same machine) are what to compare
between machines and runs; absolute times depend on the machine and its load. With
`--compare-sessions`, each handler is also measured with a boto3 Session per cached client (how
`lambdas/common/aws.py` built them before it shared one), in the same run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "cold_start.json"
TARGETS = {
    "floor": None,
    "controller": "lambdas.serving.controller",
    "detection": "lambdas.detection.handler",
    "ingestion": "lambdas.ingestion.handler",
}
REGION = "us-east-1"
PROJECT = "digits"
BUCKET = "autopilot-data"


class _Context:
    function_name = "cold-start"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:cold-start"
    aws_request_id = "00000000-0000-0000-0000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _environment() -> None:
    os.environ.update(
        {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_METRICS_NAMESPACE": "ColdStart",
            "POWERTOOLS_SERVICE_NAME": "cold-start",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }
    )
    for name in [key for key in os.environ if key.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[name]


def _sqs_event(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": "m-1",
                "receiptHandle": "r-1",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:queue",
                "awsRegion": REGION,
            }
        ]
    }


def _s3_notification(key: str, size: int) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": "2026-11-23T10:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
                    "object": {"key": key, "size": size, "eTag": "e", "sequencer": "0A"},
                },
            }
        ]
    }


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(buffer, "PNG")
    return buffer.getvalue()


def _provision() -> dict[str, Any]:
    """Moto resources shaped like the stack's; returns the invocation of each target."""
    import boto3

    from lambdas.common.constants import (
        ENV_BUCKET,
        ENV_DETECTION_QUEUE_URL,
        ENV_DETECTIONS_TOPIC,
        ENV_IDEMPOTENCY_TABLE,
        ENV_INGESTION_QUEUE_URL,
        ENV_LIFECYCLE_TOPIC,
        ENV_MODEL_CONTROL_STATE_MACHINE,
        ENV_SETTINGS_PARAMETER,
        ENV_STATE_TABLE,
        STATE_PK,
        STATE_SK,
    )
    from lambdas.common.settings import AppSettings, ProjectSettings

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for name, keys in (("state", (STATE_PK, STATE_SK)), ("idempotency", ("id",))):
        dynamodb.create_table(
            TableName=name,
            KeySchema=[
                {"AttributeName": k, "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"), strict=False)
            ],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="work")["QueueUrl"]
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="topic")["TopicArn"]
    settings = AppSettings(projects={PROJECT: ProjectSettings()})
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/settings", Value=settings.to_json(), Type="String"
    )
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    png = _png()
    train_key = f"{PROJECT}/train/seven/a.png"
    s3.put_object(Bucket=BUCKET, Key=train_key, Body=png)
    s3.put_object(Bucket=BUCKET, Key=f"{PROJECT}/inference/a.png", Body=png)
    os.environ.update(
        {
            ENV_STATE_TABLE: "state",
            ENV_IDEMPOTENCY_TABLE: "idempotency",
            ENV_SETTINGS_PARAMETER: "/settings",
            ENV_LIFECYCLE_TOPIC: topic,
            ENV_DETECTIONS_TOPIC: topic,
            ENV_DETECTION_QUEUE_URL: queue_url,
            ENV_INGESTION_QUEUE_URL: queue_url,
            ENV_BUCKET: BUCKET,
            ENV_MODEL_CONTROL_STATE_MACHINE: f"arn:aws:states:{REGION}:123456789012:stateMachine:control",
        }
    )
    return {
        "controller": {"project": PROJECT, "trigger": "schedule"},
        "detection": _sqs_event(_s3_notification(f"{PROJECT}/inference/a.png", len(png))),
        "ingestion": _sqs_event(_s3_notification(train_key, len(png))),
    }


PER_CLIENT_SESSION = "/session-per-client"


def _session_per_client() -> None:
    """The cached clients as they were built before the shared Session: a new Session for each."""
    import functools

    from lambdas.common import aws

    @functools.cache
    def client(service: str) -> Any:
        return aws.boto3.session.Session().client(service, config=aws._CONFIG)  # type: ignore[call-overload]

    aws.client = client  # type: ignore[assignment]


CLIENT_SERVICES = ("dynamodb", "sqs", "sns", "s3", "rekognition", "stepfunctions", "events")


def client_creation(mode: str) -> dict[str, float]:
    """Seconds to create the clients the handlers use, from one Session or from a Session each."""
    import boto3

    began = time.perf_counter()
    shared = boto3.session.Session()
    for service in CLIENT_SERVICES:
        session = shared if mode == "shared" else boto3.session.Session()
        session.client(service)  # type: ignore[call-overload]
    return {"seconds": time.perf_counter() - began}


def child(target: str) -> dict[str, float]:
    """One cold process: import time, then first-invocation time, in seconds."""
    _environment()
    if target.startswith("clients/"):
        return client_creation(target.partition("/")[2])
    target, _, variant = target.partition("/")
    module_name = TARGETS[target]
    began = time.perf_counter()
    if module_name is None:
        import boto3
        from aws_lambda_powertools import Logger, Metrics  # noqa: F401
    else:
        import importlib

        module = importlib.import_module(module_name)
    imported = time.perf_counter() - began
    if variant:
        _session_per_client()

    from moto import mock_aws

    with mock_aws():
        events = _provision()
        began = time.perf_counter()
        if module_name is None:
            boto3.session.Session().client("dynamodb").describe_table(TableName="state")
        else:
            response = module.handle(events[target], _Context())
            failures = response.get("batchItemFailures") if isinstance(response, dict) else None
            if failures:
                raise RuntimeError(f"{target} failed its first invocation: {response}")
        invoked = time.perf_counter() - began
    return {"import_s": imported, "first_invocation_s": invoked}


def measure(repeats: int, compare_sessions: bool = False) -> dict[str, Any]:
    names = list(TARGETS)
    if compare_sessions:
        names += [name + PER_CLIENT_SESSION for name in TARGETS if TARGETS[name] is not None]
    if compare_sessions:
        names += ["clients/shared", "clients/per-client"]
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:  # interleaved, so load changes hit every target alike
            output = subprocess.run(
                [sys.executable, "-m", "bench.cold_start", "--child", name],
                check=True,
                capture_output=True,
                text=True,
                cwd=Path(__file__).resolve().parent.parent,
            ).stdout
            samples[name].append(json.loads(output.strip().splitlines()[-1]))
    clients = {
        name.partition("/")[2]: round(statistics.median(s["seconds"] for s in runs), 3)
        for name, runs in samples.items()
        if name.startswith("clients/")
    }
    medians = {
        name: {
            metric: statistics.median(s[metric] for s in runs)
            for metric in ("import_s", "first_invocation_s")
        }
        for name, runs in samples.items()
        if not name.startswith("clients/")
    }
    floor = medians["floor"]
    handlers = {
        name: {
            "import_s": round(values["import_s"], 3),
            "first_invocation_s": round(values["first_invocation_s"], 3),
            "import_vs_floor": round(values["import_s"] / floor["import_s"], 2),
            "first_invocation_vs_floor": round(values["first_invocation_s"] / floor["first_invocation_s"], 2),
            "cold_total_vs_floor": round(
                (values["import_s"] + values["first_invocation_s"])
                / (floor["import_s"] + floor["first_invocation_s"]),
                2,
            ),
        }
        for name, values in medians.items()
        if name != "floor"
    }
    return {
        "repeats": repeats,
        "floor": {metric: round(value, 3) for metric, value in floor.items()},
        "handlers": handlers,
        **({"client_creation_s": {"services": len(CLIENT_SERVICES), **clients}} if clients else {}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--compare-sessions", action="store_true", help="also with a Session per client")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        if args.child.partition("/")[0] not in (*TARGETS, "clients"):
            parser.error(f"unknown target {args.child!r}")
        print(json.dumps(child(args.child)))
        return 0
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    report = measure(args.repeats, args.compare_sessions)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    floor = report["floor"]
    print(
        f"floor (boto3 + Powertools): import {floor['import_s']:.3f} s, "
        f"first call {floor['first_invocation_s']:.3f} s"
    )
    print(f"{'handler':12} {'import s':>9} {'x floor':>8} {'first s':>8} {'x floor':>8} {'total x':>8}")
    for name, row in report["handlers"].items():
        print(
            f"{name:12} {row['import_s']:9.3f} {row['import_vs_floor']:8.2f} "
            f"{row['first_invocation_s']:8.3f} {row['first_invocation_vs_floor']:8.2f} "
            f"{row['cold_total_vs_floor']:8.2f}"
        )
    if "client_creation_s" in report:
        created = report["client_creation_s"]
        print(
            f"{created['services']} clients: one Session {created['shared']:.3f} s, "
            f"a Session each {created['per-client']:.3f} s"
        )
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
