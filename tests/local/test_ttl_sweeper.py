"""DynamoDB TTL on the runtime's clock: items whose TTL attribute is past are deleted within the
sweeper's lag, others are kept (moto alone never deletes an expired item)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from autopilot.local.runtime import LocalRuntime, running_stack
from autopilot.local.runtime.ttl import ttl_tables

TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Table": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                "BillingMode": "PAY_PER_REQUEST",
                "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            },
        },
        "Plain": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
            },
        },
    }
}


@pytest.fixture
def runtime() -> Iterator[LocalRuntime]:
    # x600: a simulated minute is 0.1 real seconds
    with running_stack(TEMPLATE, clock_speed=600, start_pump=False) as stack:
        yield stack


def _keys(table: str) -> set[str]:
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return {item["pk"]["S"] for item in items}


def test_expired_items_are_deleted_on_the_runtime_clock_and_others_kept(runtime: LocalRuntime) -> None:
    dynamodb = boto3.client("dynamodb")
    table, plain = runtime.physical("Table"), runtime.physical("Plain")
    now = runtime.clock.now().timestamp()
    # Given items expired a second ago, expiring in ten simulated minutes (one real second),
    # far in the future, without the attribute and with a string in it
    for pk, ttl in (
        ("expired", {"N": str(int(now - 1))}),
        ("soon", {"N": str(int(now + 600))}),
        ("later", {"N": str(int(now + 30 * 86400))}),
        ("none", None),
        ("text", {"S": str(int(now - 1))}),
    ):
        item = {"pk": {"S": pk}, "sk": {"S": "x"}} | ({"expires_at": ttl} if ttl else {})
        dynamodb.put_item(TableName=table, Item=item)
    dynamodb.put_item(TableName=plain, Item={"pk": {"S": "expired"}, "expires_at": {"N": "1"}})
    runtime.ttl.lag_s = 60.0
    # When the pump runs
    runtime.pump()
    # Then only the expired number went; a table without TTL keeps everything
    assert _keys(table) == {"soon", "later", "none", "text"}
    assert _keys(plain) == {"expired"}
    # And once the runtime's clock passes the second expiry (plus the lag), it goes too
    assert runtime.run_until(lambda: "soon" not in _keys(table), timeout_s=30)
    assert _keys(table) == {"later", "none", "text"}
    assert runtime.ttl.deleted == 2


def test_an_item_written_again_with_a_later_expiry_is_kept(runtime: LocalRuntime) -> None:
    # Given an expired item that is given a later expiry before the sweep deletes it
    dynamodb = boto3.client("dynamodb")
    table = runtime.physical("Table")
    now = runtime.clock.now().timestamp()
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "kept"}, "sk": {"S": "x"}, "expires_at": {"N": "1"}})
    scanned = {"pk": {"S": "kept"}, "sk": {"S": "x"}}
    dynamodb.put_item(
        TableName=table,
        Item={"pk": {"S": "kept"}, "sk": {"S": "x"}, "expires_at": {"N": str(int(now + 86400))}},
    )
    # When the sweeper deletes what its (earlier) scan found
    (spec,) = ttl_tables(runtime.ctx)
    assert runtime.ttl._delete_if_expired(spec, scanned, now) == 0
    # Then the item with the new expiry stays
    assert _keys(table) == {"kept"}
