"""The SERVING item of a project in the state table: the controller's memory between ticks.

Attributes (times are epoch seconds, numbers)::

    last_detection_at      latest successful detection (written by detection)
    deferred_at            latest time detection sent an image back because the model was not ready
    override_state         RUNNING | STOPPED, with override_until
    transition             START | STOP while the model control state machine runs,
                           with transition_started_at, transition_expires_at, execution_arn
    start_attempts         starts made since the model was last seen RUNNING or last unwanted
    model_status           last status the controller or the state machine saw, with
                           status_changed_at (ISO time, written by the state machine; with
                           RUNNING, when the model became RUNNING: its idle clock starts there)
    last_transition        START | STOP: the kind of the last transition requested (kept after
                           the lock is released, so its duration can be measured)
    idle_gaps, start_seconds, stop_seconds, demand_at, demand_quiet, measured_transition_at,
    idle_revision          the idle history the adaptive idle threshold learns from (idle.py);
                           written with a condition on idle_revision
    start_abandoned_at     when the controller gave up starting (model.start_abandoned sent);
                           removed with the attempt count

The lock on `transition` is a conditional write, so two controller invocations (a tick and an
on-demand request) can never both start or stop the model; the state machine removes it when it
ends, and it expires on its own if an execution dies without cleaning up.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from lambdas.common import aws
from lambdas.common.constants import ITEM_SERVING, PROJECT_PK_PREFIX, STATE_PK, STATE_SK
from lambdas.serving.idle import FinishedTransition, IdleHistory
from lambdas.serving.policy import Desired, Override, ServingState, Status


def serving_key(project: str) -> dict[str, Any]:
    return {STATE_PK: {"S": f"{PROJECT_PK_PREFIX}{project}"}, STATE_SK: {"S": ITEM_SERVING}}


def _number(value: float | int) -> dict[str, str]:
    number = round(float(value), 3)
    return {"N": str(int(number)) if number.is_integer() else str(Decimal(str(number)))}


def _read_number(item: dict[str, Any], name: str) -> float | None:
    raw = item.get(name, {}).get("N")
    return float(raw) if raw is not None else None


def _read_numbers(item: dict[str, Any], name: str) -> tuple[float, ...]:
    return tuple(float(value["N"]) for value in item.get(name, {}).get("L", []) if "N" in value)


def _numbers(values: tuple[float, ...]) -> dict[str, Any]:
    return {"L": [_number(value) for value in values]}


def _read_time(item: dict[str, Any], name: str) -> float | None:
    raw = item.get(name, {}).get("S")
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def history_from_item(item: dict[str, Any]) -> IdleHistory:
    return IdleHistory(
        gaps=_read_numbers(item, "idle_gaps"),
        start_seconds=_read_numbers(item, "start_seconds"),
        stop_seconds=_read_numbers(item, "stop_seconds"),
        demand_at=_read_number(item, "demand_at"),
        quiet=bool(item.get("demand_quiet", {}).get("BOOL", False)),
        measured_transition_at=_read_number(item, "measured_transition_at"),
        revision=int(_read_number(item, "idle_revision") or 0),
    )


def finished_from_item(item: dict[str, Any]) -> FinishedTransition | None:
    kind = item.get("last_transition", {}).get("S")
    started_at = _read_number(item, "transition_started_at")
    if kind is None or started_at is None or "transition" in item:
        return None  # nothing requested yet, or still in progress
    return FinishedTransition(
        kind=kind,
        started_at=started_at,
        ended_at=_read_time(item, "status_changed_at"),
        status=item.get("model_status", {}).get("S"),
    )


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
        idle=history_from_item(item),
        finished=finished_from_item(item),
        running_since=_read_time(item, "status_changed_at")
        if item.get("model_status", {}).get("S") == Status.RUNNING
        else None,
    )


class ServingStore:
    def __init__(self, table_name: str, dynamodb_client: Any | None = None) -> None:
        self._table = table_name
        self._client = dynamodb_client

    client = aws.LazyClient("dynamodb")

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
                    "start_attempts = :attempts, last_transition = :t"
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

    def save_history(self, project: str, history: IdleHistory, previous_revision: int) -> bool:
        """Writes the idle history unless another pass wrote it since it was read (then keeps theirs)."""
        values: dict[str, Any] = {
            ":gaps": _numbers(history.gaps),
            ":starts": _numbers(history.start_seconds),
            ":stops": _numbers(history.stop_seconds),
            ":quiet": {"BOOL": history.quiet},
            ":rev": _number(previous_revision),
            ":next": _number(previous_revision + 1),
        }
        sets = [
            "idle_gaps = :gaps",
            "start_seconds = :starts",
            "stop_seconds = :stops",
            "demand_quiet = :quiet",
            "idle_revision = :next",
        ]
        for attribute, value in (
            ("demand_at", history.demand_at),
            ("measured_transition_at", history.measured_transition_at),
        ):
            if value is not None:
                sets.append(f"{attribute} = :{attribute}")
                values[f":{attribute}"] = _number(value)
        condition = "attribute_not_exists(idle_revision) OR idle_revision = :rev"
        try:
            self.client.update_item(
                TableName=self._table,
                Key=serving_key(project),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True
