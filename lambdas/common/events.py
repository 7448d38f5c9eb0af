"""Lifecycle events: one JSON message per transition on the lifecycle SNS topic.

Message body::

    {"source": "custom-labels-autopilot", "type": "training.completed", "project": "digits",
     "time": "2026-11-21T18:00:00+00:00", "detail": {...}}

Message attributes "event_type" and "project" let subscribers filter without parsing.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Collection
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common import aws, clock
from lambdas.common.constants import (
    ATTR_EVENT_TYPE,
    ATTR_PROJECT,
    EVENT_SOURCE,
    ITEM_KEPT_EVENT_PREFIX,
    KEPT_EVENT_DAYS,
    PROJECT_PK_PREFIX,
    STATE_PK,
    STATE_SK,
    STATE_TTL_ATTRIBUTE,
)

logger = logging.getLogger(__name__)
KEPT_MESSAGE_MAX_CHARS = 350_000  # under DynamoDB's 400 KB item limit


def lifecycle_envelope(event_type: str, project: Any, time: Any, detail: dict[str, Any]) -> dict[str, Any]:
    """The one shape of a lifecycle message. Lambda code passes values; the workflow definitions
    (infra/workflows) pass JSONPaths for `project`, `time` and detail values, which they turn into
    Step Functions parameters."""
    return {"source": EVENT_SOURCE, "type": event_type, "project": project, "time": time, "detail": detail}


def lifecycle_message(event_type: str, project: str, detail: dict[str, Any]) -> dict[str, Any]:
    return lifecycle_envelope(event_type, project, clock.utcnow().isoformat(), detail)


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


class KeepingPublisher:
    """Publishes through `inner` and also keeps the events of the `kept` types in the state table
    (pk PROJECT#<project>, sk EVENT#<type>#<time>#<id>, message as JSON, expiring after
    KEPT_EVENT_DAYS), so that `autopilot report` can show them later. Keeping is a side record: a
    failed write is logged and never fails the event, which SNS already carries."""

    def __init__(
        self,
        inner: LifecyclePublisher,
        table_name: str,
        kept: Collection[str],
        dynamodb_client: Any | None = None,
    ) -> None:
        self._inner = inner
        self._table = table_name
        self._kept = frozenset(kept)
        self._dynamodb = dynamodb_client

    def publish(self, event_type: str, project: str, **detail: Any) -> dict[str, Any]:
        message = self._inner.publish(event_type, project, **detail)
        if event_type in self._kept:
            self._keep(event_type, project, message)
        return message

    def _keep(self, event_type: str, project: str, message: dict[str, Any]) -> None:
        text = json.dumps(message, default=str)[:KEPT_MESSAGE_MAX_CHARS]
        expires = int(clock.utcnow().timestamp()) + KEPT_EVENT_DAYS * 86400
        sort_key = f"{ITEM_KEPT_EVENT_PREFIX}{event_type}#{message['time']}#{uuid.uuid4().hex[:8]}"
        try:
            (self._dynamodb or aws.client("dynamodb")).put_item(
                TableName=self._table,
                Item={
                    STATE_PK: {"S": f"{PROJECT_PK_PREFIX}{project}"},
                    STATE_SK: {"S": sort_key},
                    "message": {"S": text},
                    STATE_TTL_ATTRIBUTE: {"N": str(expires)},
                },
            )
        except (ClientError, BotoCoreError) as error:
            logger.warning("lifecycle event not kept", extra={"event_type": event_type, "error": str(error)})
