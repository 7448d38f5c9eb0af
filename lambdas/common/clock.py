"""The functions' clock: wall time and the waits between polls.

On AWS these are the system's `time.time` and `time.sleep`. The local runtime installs its
accelerated clock here (`install`), so that the idle time the controller measures, the times
detection records and the dataset polling of ingestion run on the same clock as the runtime's
schedules, queues and state machine waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

_now: Callable[[], float] = time.time
_sleep: Callable[[float], None] = time.sleep


def now() -> float:
    """Seconds since the epoch."""
    return _now()


def sleep(seconds: float) -> None:
    _sleep(seconds)


def install(now_fn: Callable[[], float], sleep_fn: Callable[[float], None]) -> None:
    global _now, _sleep
    _now, _sleep = now_fn, sleep_fn


def reset() -> None:
    install(time.time, time.sleep)


def utcnow() -> datetime:
    """The current time as an aware UTC datetime, on the same clock as `now`."""
    return datetime.fromtimestamp(_now(), UTC)
