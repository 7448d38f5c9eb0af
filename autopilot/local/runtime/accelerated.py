"""Every offline wait on the one local clock. With the runtime's clock `speed` times faster than
AWS, the waits that would otherwise pass in real time are scaled by the same factor: SQS message
delays (DelaySeconds, moto's `Message.delay`), Step Functions Wait states (moto's interpreter), and
the functions' own clock (`lambdas.common.clock`: the controller's idle time, the times detection
records, ingestion's dataset polling). The runtime's poller already measures batching windows and
visibility timeouts on it, and its schedules fire on it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from autopilot.local.schedules import SimulatedClock

_LOCK = threading.Lock()
MIN_REAL_WAIT_S = 0.1


@contextlib.contextmanager
def waits_on(clock: SimulatedClock) -> Iterator[None]:
    """Scales the offline waits by the clock's speed for the duration (nothing at speed 1)."""
    if clock.speed == 1.0:
        yield
        return
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Message
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    from lambdas.common import clock as shared_clock

    def delay(message: Any, delay_seconds: int) -> None:
        message.delayed_until = unix_time_millis() + int(delay_seconds) * 1000 / clock.speed

    def wait_interval(function: Any, env: Any, wait_seconds: int) -> None:
        if wait_seconds > 0:
            # At least MIN_REAL_WAIT_S: a polling loop of a few milliseconds would hold the
            # interpreter lock and starve the pump (and the functions) it is waiting for.
            env.program_state_event.wait(max(clock.real_seconds(wait_seconds), MIN_REAL_WAIT_S))

    with _LOCK:
        saved = (Message.delay, WaitFunction._wait_interval)
        Message.delay = delay  # type: ignore[method-assign,assignment]
        WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign,assignment]
        shared_clock.install(
            lambda: clock.now().timestamp(), lambda seconds: time.sleep(clock.real_seconds(seconds))
        )
    try:
        yield
    finally:
        with _LOCK:
            Message.delay, WaitFunction._wait_interval = saved  # type: ignore[method-assign]
            shared_clock.reset()
