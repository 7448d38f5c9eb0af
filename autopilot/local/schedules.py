"""Time in the local runtime: the accelerated clock and when a schedule expression is due.

Rules with `rate(...)`/`cron(...)` and EventBridge Scheduler schedules (`rate`, `cron`, `at`) fire
on the simulated clock; cron expressions are parsed by the same code the serving windows use.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from autopilot.local.template import Resolver
from autopilot.local.wiring import Schedule


class SimulatedClock:
    """Wall-clock time, sped up `speed` times from the moment it is created, except while a
    function's handler runs (`real_pace`): handler compute takes its real duration, as on AWS,
    instead of being multiplied by the speed (at x120 a half-second batch would otherwise last a
    simulated minute and run out an idle minute on its own)."""

    def __init__(self, speed: float = 1.0, start: datetime | None = None) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.speed = speed
        self._start = start or datetime.now(UTC)
        self._real_start = time.monotonic()
        self._pace_lock = threading.Lock()
        self._paced_s = 0.0  # real seconds spent at real pace, finished stretches
        self._paced_since: float | None = None
        self._paced_depth = 0

    def _paced(self, at: float) -> float:
        return self._paced_s + (at - self._paced_since if self._paced_since is not None else 0.0)

    def now(self) -> datetime:
        with self._pace_lock:
            at = time.monotonic()
            paced = self._paced(at)
        return self._start + timedelta(seconds=(at - self._real_start - paced) * self.speed + paced)

    @contextlib.contextmanager
    def real_pace(self) -> Iterator[None]:
        """The clock runs at real speed for the duration (nested or overlapping uses count once)."""
        with self._pace_lock:
            self._paced_depth += 1
            if self._paced_depth == 1:
                self._paced_since = time.monotonic()
        try:
            yield
        finally:
            with self._pace_lock:
                self._paced_depth -= 1
                if self._paced_depth == 0:
                    self._paced_s = self._paced(time.monotonic())
                    self._paced_since = None

    def elapsed_real(self) -> float:
        return time.monotonic() - self._real_start

    def real_seconds(self, simulated_seconds: float) -> float:
        return simulated_seconds / self.speed


_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")


def schedule_period(expression: str) -> timedelta | None:
    match = _RATE.match(expression.strip())
    if not match:
        return None
    amount, unit = int(match.group(1)), match.group(2).rstrip("s")
    return {
        "minute": timedelta(minutes=amount),
        "hour": timedelta(hours=amount),
        "day": timedelta(days=amount),
    }[unit]


def is_due(schedule: Schedule, now: datetime) -> bool:
    expression = schedule.expression.strip()
    period = schedule_period(expression)
    if period is not None:
        reference = schedule.last_fired or schedule.armed_at
        if reference is None:
            schedule.armed_at = now
            return False
        return now - reference >= period
    if expression.startswith("cron("):
        from lambdas.serving.windows import CronError, parse_cron

        try:
            cron = parse_cron(expression)
        except CronError:
            return False
        since = schedule.last_checked or now
        start = cron.latest_start(now, max(now - since, timedelta(seconds=0)))
        return (
            start is not None
            and start > since
            and (schedule.last_fired is None or start > schedule.last_fired)
        )
    if expression.startswith("at("):
        when = datetime.fromisoformat(expression[3:-1]).replace(tzinfo=UTC)
        return schedule.fired == 0 and now >= when
    return False


def scheduled_event(schedule: Schedule, now: datetime, resolver: Resolver) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": resolver.account,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": resolver.region,
        "resources": [str(resolver.attributes.get((schedule.logical_id, "Arn"), schedule.logical_id))],
        "detail": {},
    }
