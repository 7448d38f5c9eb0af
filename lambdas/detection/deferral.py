"""Waiting without losing anything: images that cannot be classified yet go back to the queue.

The message is sent again with DelaySeconds and the original acknowledged, so waiting for a model
to start never spends the receive count that leads to the DLQ. Two message attributes count the
round trips and remember when the wait began; after MAX_WAIT_SECONDS the message is failed
normally instead (it then reaches the DLQ after the queue's maxReceiveCount, where it can be
redriven).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from lambdas.common import aws
from lambdas.common.constants import (
    CONTROL_ACTION_AUTO,
    CONTROL_TRIGGER_DETECTION,
    DEFER_ATTR_COUNT,
    DEFER_ATTR_FIRST_AT,
    DETAIL_TYPE_MODEL_CONTROL_REQUESTED,
    EVENT_SOURCE,
)
from lambdas.serving.policy import MAX_SQS_DELAY_SECONDS

MAX_WAIT_SECONDS = 6 * 3600
THROTTLE_BASE_SECONDS = 5
THROTTLE_MAX_SECONDS = 300
# Start requests from one project are sent at most this often (the controller is idempotent anyway).
START_REQUEST_INTERVAL_SECONDS = 60


class WaitedTooLong(Exception):
    pass


@dataclass(frozen=True)
class DeferralInfo:
    count: int = 0
    first_at: float | None = None

    @classmethod
    def from_attributes(cls, attributes: dict[str, Any]) -> DeferralInfo:
        """From SQS record messageAttributes (Lambda event shape: {"name": {"stringValue": ...}})."""

        def value(name: str) -> str | None:
            attribute = attributes.get(name) or {}
            return attribute.get("stringValue") or attribute.get("StringValue")

        count, first_at = value(DEFER_ATTR_COUNT), value(DEFER_ATTR_FIRST_AT)
        return cls(count=int(count) if count else 0, first_at=float(first_at) if first_at else None)

    def waited(self, now: float) -> float:
        return 0.0 if self.first_at is None else now - self.first_at


def throttle_delay(count: int, rng: random.Random | None = None) -> int:
    """Exponential backoff with jitter for throttled calls."""
    jitter = (rng or random).uniform(0, THROTTLE_BASE_SECONDS)
    return int(min(THROTTLE_MAX_SECONDS, THROTTLE_BASE_SECONDS * 2 ** min(count, 8)) + jitter)


class Requeuer:
    def __init__(self, queue_url: str, sqs_client: Any | None = None) -> None:
        self._queue_url = queue_url
        self._client = sqs_client

    def requeue(self, body: str, info: DeferralInfo, *, now: float, delay_seconds: int) -> None:
        if info.waited(now) > MAX_WAIT_SECONDS:
            raise WaitedTooLong(
                f"the image waited {info.waited(now) / 3600:.1f} h for the model (limit "
                f"{MAX_WAIT_SECONDS / 3600:.0f} h); failing the message so it reaches the DLQ for a redrive"
            )
        client = self._client or aws.client("sqs")
        client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=body,
            DelaySeconds=max(0, min(MAX_SQS_DELAY_SECONDS, int(delay_seconds))),
            MessageAttributes={
                DEFER_ATTR_COUNT: {"DataType": "Number", "StringValue": str(info.count + 1)},
                DEFER_ATTR_FIRST_AT: {
                    "DataType": "Number",
                    "StringValue": f"{info.first_at if info.first_at is not None else now:.3f}",
                },
            },
        )


class ControlRequester:
    """Asks the model controller for a pass (it starts the model if work waits)."""

    def __init__(self, event_bus: str, events_client: Any | None = None) -> None:
        self._bus = event_bus
        self._client = events_client

    def request_start(self, project: str) -> None:
        client = self._client or aws.client("events")
        response = client.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": DETAIL_TYPE_MODEL_CONTROL_REQUESTED,
                    "Detail": json.dumps(
                        {
                            "project": project,
                            "action": CONTROL_ACTION_AUTO,
                            "trigger": CONTROL_TRIGGER_DETECTION,
                        }
                    ),
                    "EventBusName": self._bus,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"start request for project {project} was not accepted: {response['Entries']}")
