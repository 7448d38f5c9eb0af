"""How long an image that cannot be classified yet waits, and when detection asks for a start.

No AWS here: the re-queueing and the start requests themselves are deferral.py.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from lambdas.common.constants import DEFER_ATTR_COUNT, DEFER_ATTR_FIRST_AT
from lambdas.common.settings import AppSettings
from lambdas.serving.policy import deferral_delay_seconds

DEFAULT_MODEL_POLL_SECONDS = 60  # for a project that is no longer configured

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


def deferral_delay(settings: AppSettings, project: str, *, throttled: bool, count: int) -> int:
    """Throttled calls back off exponentially; an image waiting for its model is tried again after
    the project's model_poll_seconds."""
    if throttled:
        return throttle_delay(count)
    poll = (
        settings.projects[project].model_poll_seconds
        if project in settings.projects
        else DEFAULT_MODEL_POLL_SECONDS
    )
    return deferral_delay_seconds(poll)


def start_request_due(previous: float | None, now: float) -> bool:
    """Whether a project's deferral should ask the controller for a start (at most once a minute)."""
    return previous is None or now - previous >= START_REQUEST_INTERVAL_SECONDS
