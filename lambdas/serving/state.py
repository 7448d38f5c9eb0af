"""The SERVING item of a project in the state table: the controller's memory between ticks.

Attributes (times are epoch seconds, numbers)::

    last_detection_at      latest successful detection (written by detection)
    deferred_at            latest time detection sent an image back because the model was not ready
    override_state         RUNNING | STOPPED, with override_until
    transition             START | STOP while the model control state machine runs,
                           with transition_started_at, transition_expires_at, execution_arn
    start_attempts         starts made since the model was last seen RUNNING or last unwanted
    model_status           last status the controller or the state machine saw
    start_abandoned_at     when the controller gave up starting (model.start_abandoned sent);
                           removed with the attempt count

The lock on `transition` is a conditional write, so two controller invocations (a tick and an
on-demand request) can never both start or stop the model; the state machine removes it when it
ends, and it expires on its own if an execution dies without cleaning up.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from lambdas.common import aws
from lambdas.common.constants import ITEM_SERVING, PROJECT_PK_PREFIX, STATE_PK, STATE_SK
from lambdas.serving.policy import Desired, Override, ServingState


def serving_key(project: str) -> dict[str, Any]:
    return {STATE_PK: {"S": f"{PROJECT_PK_PREFIX}{project}"}, STATE_SK: {"S": ITEM_SERVING}}


def _number(value: float | int) -> dict[str, str]:
    number = round(float(value), 3)
    return {"N": str(int(number)) if number.is_integer() else str(Decimal(str(number)))}


def _read_number(item: dict[str, Any], name: str) -> float | None:
    raw = item.get(name, {}).get("N")
    return float(raw) if raw is not None else None


def state_from_item(item: dict[str, Any]) -> ServingState:
    override = None
    override_state = item.get("override_state", {}).get("S")
    override_until = _read_number(item, "override_until")
    if override_state in (Desired.RUNNING, Desired.STOPPED) and override_until is not None:
        override = Override(state=Desired(override_state), until=override_until)
    return ServingState(
        last_detection_at=_read_number(item, "last_detection_at"),
        deferred_at=_read_number(item, "deferred_at"),
        override=override,
        transition=item.get("transition", {}).get("S"),
        transition_expires_at=_read_number(item, "transition_expires_at"),
        start_attempts=int(_read_number(item, "start_attempts") or 0),
    )


class ServingStore:
    def __init__(self, table_name: str, dynamodb_client: Any | None = None) -> None:
        self._table = table_name
        self._client = dynamodb_client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("dynamodb")
        return self._client

    def load(self, project: str) -> ServingState:
        response = self.client.get_item(TableName=self._table, Key=serving_key(project), ConsistentRead=True)
        return state_from_item(response.get("Item", {}))

    def _raise_to(self, project: str, attribute: str, at: float) -> float | None:
        """Sets `attribute` to `at` unless it already holds a later time; returns the previous value."""
        try:
            response = self.client.update_item(
                TableName=self._table,
                Key=serving_key(project),
                UpdateExpression="SET #a = :at",
                ConditionExpression="attribute_not_exists(#a) OR #a < :at",
                ExpressionAttributeNames={"#a": attribute},
                ExpressionAttributeValues={":at": _number(at)},
                ReturnValues="UPDATED_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return at  # a later (or equal) time is already recorded
            raise
        return _read_number(response.get("Attributes", {}), attribute)

    def record_detection(self, project: str, at: float) -> None:
        self._raise_to(project, "last_detection_at", at)

    def record_deferral(self, project: str, at: float) -> float | None:
        """Marks work waiting for the model; returns the previous marker time."""
        return self._raise_to(project, "deferred_at", at)

    def set_override(self, project: str, state: Desired, until: float) -> None:
        self.client.update_item(
            TableName=self._table,
            Key=serving_key(project),
            UpdateExpression="SET override_state = :s, override_until = :u",
            ExpressionAttributeValues={":s": {"S": state.value}, ":u": _number(until)},
        )

    def clear_override(self, project: str) -> None:
        self.client.update_item(
            TableName=self._table,
            Key=serving_key(project),
            UpdateExpression="REMOVE override_state, override_until",
        )

    def acquire_transition(
        self, project: str, transition: str, now: float, expires_at: float, attempts: int
    ) -> bool:
        """Takes the transition lock (and records the attempt count) unless another one is live."""
        try:
            self.client.update_item(
                TableName=self._table,
                Key=serving_key(project),
                UpdateExpression=(
                    "SET transition = :t, transition_started_at = :now, transition_expires_at = :exp, "
                    "start_attempts = :attempts"
                ),
                ConditionExpression="attribute_not_exists(transition) OR transition_expires_at < :now",
                ExpressionAttributeValues={
                    ":t": {"S": transition},
                    ":now": _number(now),
                    ":exp": _number(expires_at),
                    ":attempts": _number(attempts),
                },
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def attach_execution(self, project: str, execution_arn: str) -> None:
        self.client.update_item(
            TableName=self._table,
            Key=serving_key(project),
            UpdateExpression="SET execution_arn = :e",
            ExpressionAttributeValues={":e": {"S": execution_arn}},
        )

    def release_transition(self, project: str) -> None:
        self.client.update_item(
            TableName=self._table,
            Key=serving_key(project),
            UpdateExpression="REMOVE transition, transition_expires_at, execution_arn",
        )

    def mark_start_abandoned(self, project: str, at: float) -> bool:
        """Records that the controller gave up starting; False if that was already recorded."""
        try:
            self.client.update_item(
                TableName=self._table,
                Key=serving_key(project),
                UpdateExpression="SET start_abandoned_at = :at",
                ConditionExpression="attribute_not_exists(start_abandoned_at)",
                ExpressionAttributeValues={":at": _number(at)},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def record_status(self, project: str, status: str, reset_attempts: bool) -> None:
        expression = "SET model_status = :s" + (
            ", start_attempts = :zero REMOVE start_abandoned_at" if reset_attempts else ""
        )
        values: dict[str, Any] = {":s": {"S": status}}
        if reset_attempts:
            values[":zero"] = _number(0)
        self.client.update_item(
            TableName=self._table,
            Key=serving_key(project),
            UpdateExpression=expression,
            ExpressionAttributeValues=values,
        )
