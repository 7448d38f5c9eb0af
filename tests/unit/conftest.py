"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.common import aws
from tests.tables import create_state_table

STATE_TABLE = "state"


@pytest.fixture
def state_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto DynamoDB table named STATE_TABLE, keyed like the stack's state table; yields the client.

    Cached clients are reset around the test so that code reaching for `aws.client("dynamodb")`
    talks to this mock too, and a global endpoint left in the environment cannot redirect them.
    """
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        aws.reset_clients()
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_state_table(client, STATE_TABLE)
        yield client
        aws.reset_clients()
