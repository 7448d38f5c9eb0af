"""Tiny handlers the local runtime tests register with the local Lambda service."""

from __future__ import annotations

import os
from typing import Any


def double(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "value": event["value"] * 2,
        "marker": os.environ.get("SAMPLE_MARKER"),
        "function": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }


def fail(event: dict[str, Any], context: Any) -> None:
    raise ValueError(f"cannot handle {event.get('value')!r}")


RECEIVED: list[Any] = []


def record(event: Any, context: Any) -> dict[str, Any]:
    RECEIVED.append(event)
    return {"batchItemFailures": []}


def sqs_consumer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Publishes each S3 key it receives; reports keys containing "bad" as failed items."""
    import json
    from urllib.parse import unquote_plus

    import boto3

    failures = []
    sns = boto3.client("sns")
    for record in event["Records"]:
        body = json.loads(record["body"])
        for s3_record in body.get("Records", []):
            key = unquote_plus(s3_record["s3"]["object"]["key"])
            if "bad" in key:
                failures.append({"itemIdentifier": record["messageId"]})
                continue
            sns.publish(TopicArn=os.environ["TOPIC_ARN"], Message=json.dumps({"key": key}))
    return {"batchItemFailures": failures}
