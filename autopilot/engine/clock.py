"""Wall-clock time of the engine (epoch seconds), injectable for tests."""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    def __init__(self, now: Callable[[], float] | None = None) -> None:
        self._now = now or time.time

    def now(self) -> float:
        return self._now()


def epoch_ms(seconds: float) -> int:
    return int(seconds * 1000)
