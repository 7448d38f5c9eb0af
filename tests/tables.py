"""DynamoDB tables shaped like the stack's, for tests that run against moto."""

from __future__ import annotations

from typing import Any

from lambdas.common.constants import STATE_PK, STATE_SK


def create_state_table(client: Any, name: str) -> None:
    """The state table: string partition key "pk" and sort key "sk", on-demand."""
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": STATE_PK, "KeyType": "HASH"},
            {"AttributeName": STATE_SK, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": STATE_PK, "AttributeType": "S"},
            {"AttributeName": STATE_SK, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
