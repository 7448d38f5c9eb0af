"""What the local runtime derived from the template: targets, mappings, taps, schedules, and
what it observed: published messages and timeline entries."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Target:
    arn: str
    input: str | None = None
    input_path: str | None = None
    input_transformer: dict[str, Any] | None = None
    dead_letter_arn: str | None = None
    role_arn: str | None = None  # the role the rule or schedule delivers with (RoleArn)


@dataclass
class EventSourceMapping:
    logical_id: str
    function_name: str
    queue_arn: str
    queue_url: str
    batch_size: int
    report_batch_item_failures: bool
    visibility_timeout_s: int
    enabled: bool = True
    batching_window_s: float = 0.0
    pending_since: float | None = None


@dataclass
class Tap:
    """A hidden queue that receives what moto can route but not deliver (to Lambda, to Step Functions)."""

    kind: str  # "s3-lambda" | "sns-lambda" | "rule" | "observer"
    queue_url: str
    source_logical_id: str
    targets: list[Target] = field(default_factory=list)
    subscription_arn: str = ""


@dataclass
class Schedule:
    logical_id: str
    expression: str
    targets: list[Target]
    enabled: bool = True
    last_fired: datetime | None = None
    last_checked: datetime | None = None
    armed_at: datetime | None = None
    fired: int = 0


@dataclass
class Published:
    """A message published on one of the stack's topics, seen through an observer queue."""

    topic_logical_id: str
    topic_arn: str
    subject: str | None
    message: str
    attributes: dict[str, str]
    received_at: float

    def json(self) -> Any:
        try:
            return json.loads(self.message)
        except ValueError:
            return None


@dataclass
class TimelineEntry:
    elapsed_s: float
    source: str
    text: str
