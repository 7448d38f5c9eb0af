"""DynamoDB tables: keys, global secondary indexes and time to live as the template declares them."""

from __future__ import annotations

from typing import Any

from autopilot.local.runtime.context import StackContext
from autopilot.local.template import physical_name

TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")


def assign_ids(ctx: StackContext) -> None:
    r = ctx.resolver
    for lid, res in r.resources_of_type(*TABLE_TYPES).items():
        props = res.get("Properties") or {}
        name = str(props.get("TableName") or physical_name(lid, 255))
        r.physical_ids[lid] = name
        r.attributes[(lid, "Arn")] = f"arn:aws:dynamodb:{ctx.region}:{ctx.account}:table/{name}"
        r.attributes[(lid, "StreamArn")] = f"{r.attributes[(lid, 'Arn')]}/stream/local"


def create_tables(ctx: StackContext) -> None:
    dynamodb = ctx.client("dynamodb")
    for lid in ctx.of_type(*TABLE_TYPES):
        props = ctx.resolver.resolved_properties(lid)
        kwargs: dict[str, Any] = {
            "TableName": ctx.resolver.physical_ids[lid],
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        indexes = [
            {key: index[key] for key in ("IndexName", "KeySchema", "Projection") if key in index}
            for index in props.get("GlobalSecondaryIndexes") or []
        ]
        if indexes:
            kwargs["GlobalSecondaryIndexes"] = indexes
        dynamodb.create_table(**kwargs)
        ttl = props.get("TimeToLiveSpecification") or {}
        if ttl.get("Enabled") and ttl.get("AttributeName"):
            dynamodb.update_time_to_live(
                TableName=kwargs["TableName"],
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
