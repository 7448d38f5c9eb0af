"""Lifecycle events: one JSON message per transition on the lifecycle SNS topic.

Message body::

    {"source": "custom-labels-autopilot", "type": "training.completed", "project": "digits",
     "time": "2026-11-21T18:00:00+00:00", "detail": {...}}

Message attributes "event_type" and "project" let subscribers filter without parsing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from lambdas.common import aws
from lambdas.common.constants import ATTR_EVENT_TYPE, ATTR_PROJECT, EVENT_SOURCE


def lifecycle_message(event_type: str, project: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": EVENT_SOURCE,
        "type": event_type,
        "project": project,
        "time": datetime.now(UTC).isoformat(),
        "detail": detail,
    }


class LifecyclePublisher:
    def __init__(self, topic_arn: str, sns_client: Any | None = None) -> None:
        self._topic_arn = topic_arn
        self._sns = sns_client

    @property
    def sns(self) -> Any:
        if self._sns is None:
            self._sns = aws.client("sns")
        return self._sns

    def publish(self, event_type: str, project: str, **detail: Any) -> dict[str, Any]:
        message = lifecycle_message(event_type, project, detail)
        self.sns.publish(
            TopicArn=self._topic_arn,
            Subject=f"[autopilot] {project}: {event_type}"[:100],
            Message=json.dumps(message, default=str),
            MessageAttributes={
                ATTR_EVENT_TYPE: {"DataType": "String", "StringValue": event_type},
                ATTR_PROJECT: {"DataType": "String", "StringValue": project},
            },
        )
        return message
