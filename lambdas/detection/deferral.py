"""Waiting without losing anything: images that cannot be classified yet go back to the queue.

The message is sent again with DelaySeconds and the original acknowledged, so waiting for a model
to start never spends the receive count that leads to the DLQ. Two message attributes count the
round trips and remember when the wait began; after MAX_WAIT_SECONDS the message is failed
normally instead (it then reaches the DLQ after the queue's maxReceiveCount, where it can be
redriven).
"""

from __future__ import annotations

import json
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
from lambdas.detection.policy import (
    MAX_WAIT_SECONDS,
    START_REQUEST_INTERVAL_SECONDS,
    DeferralInfo,
    WaitedTooLong,
    throttle_delay,
)
from lambdas.serving.policy import MAX_SQS_DELAY_SECONDS

__all__ = [
    "MAX_WAIT_SECONDS",
    "START_REQUEST_INTERVAL_SECONDS",
    "ControlRequester",
    "DeferralInfo",
    "Requeuer",
    "WaitedTooLong",
    "throttle_delay",
]


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
