"""DynamoDB access for the training items of the state table: the lock and the production record.

Training item (pk "PROJECT#<name>", sk "TRAINING")::

    lock_token        S   execution name of the training in flight (absent when idle)
    lock_expires_at   N   epoch seconds after which a stale lock may be taken over
    locked_at         S   ISO-8601 time the lock was taken
    version_name      S   VersionName of the training in flight
    execution_arn     S   its state machine execution
    last_counts       M   dataset snapshot (see DatasetSnapshot) at the last training start
    last_started_at   S
    last_outcome      S   PROMOTED | REJECTED | FAILED (of the last finished training)
    last_reason       S   why, in words
    last_finished_at  S

The lock is a conditional write: taken only when absent or expired, released only by its holder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from lambdas.common.constants import ITEM_SEEN_VERSION_PREFIX, ITEM_TRAINING
from lambdas.common.production import (
    DatasetSnapshot,
    ProductionRecord,
    StateTableClient,
    get_production,
    state_key,
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class ProductionChangedError(RuntimeError):
    """The production record no longer names the version the gate compared against."""


@dataclass(frozen=True)
class TrainingRecord:
    project: str
    lock_token: str | None = None
    lock_expires_at: int | None = None
    version_name: str | None = None
    execution_arn: str | None = None
    last_counts: DatasetSnapshot | None = None
    last_started_at: str | None = None
    last_outcome: str | None = None
    last_reason: str | None = None
    last_finished_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def locked(self, now_epoch: int) -> bool:
        return bool(self.lock_token) and (self.lock_expires_at or 0) > now_epoch


def _values(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class TrainingStateStore(StateTableClient):
    # --- training item -------------------------------------------------------------------------
    def get_training(self, project: str) -> TrainingRecord:
        response = self.client.get_item(
            TableName=self.table_name, Key=state_key(project, ITEM_TRAINING), ConsistentRead=True
        )
        raw = {k: _deserializer.deserialize(v) for k, v in (response.get("Item") or {}).items()}
        counts = raw.get("last_counts")
        return TrainingRecord(
            project=project,
            lock_token=raw.get("lock_token"),
            lock_expires_at=int(raw["lock_expires_at"]) if "lock_expires_at" in raw else None,
            version_name=raw.get("version_name"),
            execution_arn=raw.get("execution_arn"),
            last_counts=DatasetSnapshot.from_dict(counts) if counts is not None else None,
            last_started_at=raw.get("last_started_at"),
            last_outcome=raw.get("last_outcome"),
            last_reason=raw.get("last_reason"),
            last_finished_at=raw.get("last_finished_at"),
        )

    def acquire_lock(
        self, project: str, *, token: str, version_name: str, now: datetime, ttl_seconds: int
    ) -> bool:
        """True when this caller now holds the project's training lock; False when another does."""
        epoch = int(now.timestamp())
        return self._update_training_if(
            project,
            "SET lock_token = :token, lock_expires_at = :expires, locked_at = :now_iso, "
            "version_name = :version REMOVE execution_arn",
            condition="attribute_not_exists(lock_token) OR lock_expires_at < :now",
            values={
                ":token": token,
                ":expires": epoch + ttl_seconds,
                ":now_iso": now.isoformat(),
                ":version": version_name,
                ":now": epoch,
            },
        )

    def confirm_start(
        self, project: str, *, token: str, execution_arn: str, counts: DatasetSnapshot, now: datetime
    ) -> None:
        """Records the started execution and the dataset counts it trains on (new-entry baseline)."""
        self.client.update_item(
            TableName=self.table_name,
            Key=state_key(project, ITEM_TRAINING),
            UpdateExpression=("SET execution_arn = :arn, last_counts = :counts, last_started_at = :now_iso"),
            ConditionExpression="lock_token = :token",
            ExpressionAttributeValues=_values(
                {
                    ":arn": execution_arn,
                    ":counts": counts.to_dict(),
                    ":now_iso": now.isoformat(),
                    ":token": token,
                }
            ),
        )

    def mark_version_seen(self, project: str, version_name: str, *, status: str, now: datetime) -> bool:
        """True the first time a version the workflow did not create is seen (it is reported once)."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    **state_key(project, f"{ITEM_SEEN_VERSION_PREFIX}{version_name}"),
                    **_values({"status": status, "seen_at": now.isoformat()}),
                },
                ConditionExpression="attribute_not_exists(sk)",
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True

    def release_lock(self, project: str, *, token: str, outcome: str, reason: str, now: datetime) -> bool:
        """Releases the lock if `token` still holds it; False when it was already released or taken over."""
        return self._update_training_if(
            project,
            "SET last_outcome = :outcome, last_reason = :reason, last_finished_at = :now_iso "
            "REMOVE lock_token, lock_expires_at, locked_at",
            condition="lock_token = :token",
            values={
                ":outcome": outcome,
                ":reason": reason[:1000],
                ":now_iso": now.isoformat(),
                ":token": token,
            },
        )

    def _update_training_if(
        self, project: str, update: str, *, condition: str, values: dict[str, Any]
    ) -> bool:
        """One conditional update of the training item; False when the condition does not hold."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=state_key(project, ITEM_TRAINING),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=_values(values),
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True

    # --- production item -----------------------------------------------------------------------
    def get_production(self, project: str) -> ProductionRecord | None:
        return get_production(project, table_name=self.table_name, client=self.client)

    def put_production(self, record: ProductionRecord, *, expected_previous_arn: str | None) -> None:
        """Replaces the production record if it still names `expected_previous_arn` (or the new one)."""
        condition = "attribute_not_exists(version_arn) OR version_arn = :new"
        values: dict[str, Any] = {":new": record.version_arn}
        if expected_previous_arn:
            condition += " OR version_arn = :previous"
            values[":previous"] = expected_previous_arn
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=record.to_attribute_values(),
                ConditionExpression=condition,
                ExpressionAttributeValues=_values(values),
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                current = self.get_production(record.project)
                raise ProductionChangedError(
                    f"production of {record.project!r} changed during the training (now "
                    f"{current.version_arn if current else 'none'}, expected "
                    f"{expected_previous_arn or 'none'}); not promoting {record.version_name}"
                ) from None
            raise
