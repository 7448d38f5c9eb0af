"""DynamoDB Time to Live on the local clock: moto keeps the TTL setting of a table but never
deletes an expired item. The sweeper does, as DynamoDB's background process does: an item whose
TTL attribute (the table's TimeToLiveSpecification in the template) holds a number of epoch
seconds earlier than the runtime's clock is deleted, eventually: within `lag_s` simulated seconds
of its expiry (plus one pump round). Items without the attribute, or with a value that is not a
number, never expire, as on AWS.

On AWS the deletion is best effort, "typically within two days of expiration" (DynamoDB API
Reference, UpdateTimeToLive), and an expired item shows in reads until then; offline the lag is
bounded by `lag_s`, so code must not rely on either (it may filter expired items itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from autopilot.local.runtime.context import StackContext

DEFAULT_LAG_S = 300.0  # simulated seconds between sweeps: an expired item goes within five minutes


@dataclass(frozen=True)
class TtlTable:
    name: str
    attribute: str
    keys: tuple[str, ...]


def ttl_tables(ctx: StackContext) -> list[TtlTable]:
    """The provisioned tables whose template enables TTL, with their TTL attribute and key names."""
    tables = []
    for lid, resource in ctx.of_type("AWS::DynamoDB::Table").items():
        props = resource.get("Properties") or {}
        spec = props.get("TimeToLiveSpecification") or {}
        if not spec.get("Enabled") or not spec.get("AttributeName"):
            continue
        name = ctx.resolver.physical_ids.get(lid)
        if name is None:
            continue  # not provisioned (yet)
        keys = tuple(str(key["AttributeName"]) for key in props.get("KeySchema") or [])
        tables.append(TtlTable(str(name), str(spec["AttributeName"]), keys))
    return tables


class TtlSweeper:
    def __init__(self, ctx: StackContext, lag_s: float = DEFAULT_LAG_S) -> None:
        self.ctx = ctx
        self.lag_s = lag_s
        self.deleted = 0  # items expired so far
        self._last_sweep: float | None = None

    def due(self, now: float) -> bool:
        return self._last_sweep is None or now - self._last_sweep >= self.lag_s

    def sweep(self, force: bool = False) -> int:
        """Deletes the expired items of every TTL table when a sweep is due; returns how many."""
        now = self.ctx.clock.now().timestamp()
        if not force and not self.due(now):
            return 0
        self._last_sweep = now
        deleted = sum(self._expire(table, now) for table in ttl_tables(self.ctx))
        if deleted:
            self.deleted += deleted
            self.ctx.note("dynamodb", f"TTL deleted {deleted} expired item(s)")
        return deleted

    def _expire(self, table: TtlTable, now: float) -> int:
        dynamodb = self.ctx.client("dynamodb")
        names = {f"#k{i}": key for i, key in enumerate(table.keys)} | {"#ttl": table.attribute}
        request: dict[str, Any] = {
            "TableName": table.name,
            # A number below now: other types never expire (DynamoDB ignores them).
            "FilterExpression": "attribute_type(#ttl, :n) AND #ttl < :now",
            "ProjectionExpression": ", ".join(f"#k{i}" for i in range(len(table.keys))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":n": {"S": "N"}, ":now": {"N": str(now)}},
        }
        deleted = 0
        while True:
            page = dynamodb.scan(**request)
            for item in page.get("Items", []):
                deleted += self._delete_if_expired(table, item, now)
            if "LastEvaluatedKey" not in page:
                return deleted
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _delete_if_expired(self, table: TtlTable, item: dict[str, Any], now: float) -> int:
        """Deletes the item unless it was written again with a later TTL since the scan."""
        try:
            self.ctx.client("dynamodb").delete_item(
                TableName=table.name,
                Key={key: item[key] for key in table.keys},
                ConditionExpression="attribute_type(#ttl, :n) AND #ttl < :now",
                ExpressionAttributeNames={"#ttl": table.attribute},
                ExpressionAttributeValues={":n": {"S": "N"}, ":now": {"N": str(now)}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return 0
            raise
        return 1
