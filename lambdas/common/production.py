"""The production record: which project version serves a project, and why it was promoted.

Written only by the training workflow when a version passes the evaluation gate; read by
detection and by the model controller to know which version ARN to start, stop and call.

DynamoDB item in the state table (env ``STATE_TABLE_NAME``)::

    pk                    S   "PROJECT#<project name>"
    sk                    S   "PRODUCTION"
    project               S   project name
    version_arn           S   ProjectVersionArn of the production version
    version_name          S   its VersionName
    f1_score              N   EvaluationResult.F1Score at promotion (0..1)
    promoted_at           S   ISO-8601 UTC timestamp of the promotion
    dataset_snapshot      M   dataset statistics the version was trained on:
        train_labeled_entries  N   test_labeled_entries  N
        train_total_entries    N   test_total_entries    N
        labels                 N   (number of labels in the training dataset)
    previous_version_arn  S   the version it replaced (absent for the first promotion)
    execution_arn         S   training workflow execution that promoted it (optional)

A missing item means no version of the project has been promoted yet. The item is replaced as a
whole at each promotion (conditional on the previous version ARN, so two promotions cannot
overwrite each other silently).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from lambdas.common import aws
from lambdas.common.constants import ENV_STATE_TABLE, ITEM_PRODUCTION, PROJECT_PK_PREFIX, STATE_PK, STATE_SK

_SNAPSHOT_FIELDS = (
    "train_labeled_entries",
    "test_labeled_entries",
    "train_total_entries",
    "test_total_entries",
    "labels",
)


@dataclass(frozen=True)
class DatasetSnapshot:
    """Dataset statistics at the start of the training that produced a version."""

    train_labeled_entries: int = 0
    test_labeled_entries: int = 0
    train_total_entries: int = 0
    test_total_entries: int = 0
    labels: int = 0

    @property
    def labeled_entries(self) -> int:
        return self.train_labeled_entries + self.test_labeled_entries

    def to_dict(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in _SNAPSHOT_FIELDS}

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> DatasetSnapshot:
        raw = raw or {}
        return cls(**{name: int(raw.get(name) or 0) for name in _SNAPSHOT_FIELDS})


@dataclass(frozen=True)
class ProductionRecord:
    project: str
    version_arn: str
    version_name: str
    f1_score: float
    promoted_at: str
    dataset_snapshot: DatasetSnapshot = field(default_factory=DatasetSnapshot)
    previous_version_arn: str | None = None
    execution_arn: str | None = None

    def to_item(self) -> dict[str, Any]:
        """Python-typed item (for a DynamoDB Table resource); see `to_attribute_values` for a client."""
        item: dict[str, Any] = {
            STATE_PK: project_key(self.project),
            STATE_SK: ITEM_PRODUCTION,
            "project": self.project,
            "version_arn": self.version_arn,
            "version_name": self.version_name,
            "f1_score": Decimal(str(self.f1_score)),
            "promoted_at": self.promoted_at,
            "dataset_snapshot": self.dataset_snapshot.to_dict(),
        }
        if self.previous_version_arn:
            item["previous_version_arn"] = self.previous_version_arn
        if self.execution_arn:
            item["execution_arn"] = self.execution_arn
        return item

    def to_attribute_values(self) -> dict[str, Any]:
        serializer = TypeSerializer()
        return {key: serializer.serialize(value) for key, value in self.to_item().items()}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ProductionRecord:
        """Builds a record from a Python-typed item (Decimal numbers accepted)."""
        return cls(
            project=str(item["project"]),
            version_arn=str(item["version_arn"]),
            version_name=str(item["version_name"]),
            f1_score=float(item.get("f1_score") or 0),
            promoted_at=str(item.get("promoted_at") or ""),
            dataset_snapshot=DatasetSnapshot.from_dict(item.get("dataset_snapshot")),
            previous_version_arn=item.get("previous_version_arn") or None,
            execution_arn=item.get("execution_arn") or None,
        )

    @classmethod
    def from_attribute_values(cls, attributes: dict[str, Any]) -> ProductionRecord:
        deserializer = TypeDeserializer()
        return cls.from_item({key: deserializer.deserialize(value) for key, value in attributes.items()})


def project_key(project: str) -> str:
    return f"{PROJECT_PK_PREFIX}{project}"


def state_key(project: str, sort_key: str) -> dict[str, dict[str, str]]:
    """The key of one item of a project in the state table, in DynamoDB client (attribute value) form."""
    return {STATE_PK: {"S": project_key(project)}, STATE_SK: {"S": sort_key}}


def production_key(project: str) -> dict[str, dict[str, str]]:
    return state_key(project, ITEM_PRODUCTION)


class StateTableClient:
    """Base of the classes that read and write items of the state table: the table name and a
    DynamoDB client created on first use (or injected by tests)."""

    def __init__(self, table_name: str | None = None, client: Any | None = None) -> None:
        name = table_name or os.environ.get(ENV_STATE_TABLE)
        if not name:
            raise RuntimeError(f"environment variable {ENV_STATE_TABLE} is not set (the state table name)")
        self.table_name = name
        self._client = client

    client = aws.LazyClient("dynamodb")


def get_production(
    project: str, *, table_name: str | None = None, client: Any | None = None
) -> ProductionRecord | None:
    """The promoted version of `project`, or None when nothing has been promoted yet.

    Reads strongly consistently from the state table named by `table_name` or env STATE_TABLE_NAME.
    """
    name = table_name or os.environ.get(ENV_STATE_TABLE)
    if not name:
        raise RuntimeError(f"environment variable {ENV_STATE_TABLE} is not set (the state table name)")
    dynamodb = client or aws.client("dynamodb")
    response = dynamodb.get_item(TableName=name, Key=production_key(project), ConsistentRead=True)
    item = response.get("Item")
    if not item:
        return None
    return ProductionRecord.from_attribute_values(item)
