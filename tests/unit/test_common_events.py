"""Lifecycle events kept in the state table (KeepingPublisher), for the report."""

from __future__ import annotations

import json
from typing import Any

import boto3
from moto import mock_aws

from lambdas.common.events import KeepingPublisher


class RecordingPublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def publish(self, event_type: str, project: str, **detail: Any) -> dict[str, Any]:
        self.sent.append((event_type, project))
        return {"type": event_type, "project": project, "time": "2027-01-15T08:00:00+00:00", "detail": detail}


def test_only_the_kept_event_types_are_written_with_an_expiry() -> None:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="state",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        inner = RecordingPublisher()
        publisher = KeepingPublisher(inner, "state", kept=("entries.rejected",), dynamodb_client=dynamodb)  # type: ignore[arg-type]
        # When one kept and one other event are published
        publisher.publish("entries.rejected", "digits", count=1, rejections=[{"key": "k", "reason": "r"}])
        publisher.publish("entries.applied", "digits", count=3)
        # Then both went to the topic, and only the rejection was kept, with its message and TTL
        assert inner.sent == [("entries.rejected", "digits"), ("entries.applied", "digits")]
        items = dynamodb.scan(TableName="state")["Items"]
        assert len(items) == 1
        assert items[0]["pk"]["S"] == "PROJECT#digits"
        assert items[0]["sk"]["S"].startswith("EVENT#entries.rejected#2027-01-15T08:00:00+00:00#")
        assert json.loads(items[0]["message"]["S"])["detail"]["rejections"] == [{"key": "k", "reason": "r"}]
        assert int(items[0]["expires_at"]["N"]) > 0


def test_a_failed_keep_never_fails_the_event() -> None:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")  # no table: every write fails
        inner = RecordingPublisher()
        publisher = KeepingPublisher(inner, "missing", kept=("entries.rejected",), dynamodb_client=dynamodb)  # type: ignore[arg-type]
        message = publisher.publish("entries.rejected", "digits", count=0, rejections=[])
        assert message["type"] == "entries.rejected" and inner.sent == [("entries.rejected", "digits")]
