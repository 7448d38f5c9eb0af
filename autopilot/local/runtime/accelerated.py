"""Every offline wait on the one local clock. With the runtime's clock `speed` times faster than
AWS, the waits that would otherwise pass in real time are scaled by the same factor: SQS message
delays (DelaySeconds, moto's `Message.delay`), Step Functions Wait states (moto's interpreter), and
the functions' own clock (`lambdas.common.clock`: the controller's idle time, the times detection
records, ingestion's dataset polling). The runtime's poller already measures batching windows and
visibility timeouts on it, its schedules fire on it and its TTL sweeper expires items on it.

The times Step Functions hands to a state machine as `$$.State.EnteredTime` are on it too: the
model control workflow records RUNNING and STOPPED with them, and the controller measures start
and stop durations from its own clock to those records (lambdas/serving/idle.py), so both sides
must read one clock. moto stamps EnteredTime with `datetime.datetime.now(...)` in one method of
its state base class; `entered_time_on` swaps that module's `datetime` for one whose `now` reads
the local clock, and fails loudly when a moto upgrade moves the stamp.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

from autopilot.local.schedules import SimulatedClock

_LOCK = threading.Lock()
MIN_REAL_WAIT_S = 0.1
_STATE_MODULE = "moto.stepfunctions.parser.asl.component.state.state"
_ENTERED_TIME_STAMP = "EnteredTime=datetime.datetime.now(tz=datetime.timezone.utc)"


def _clock_datetime(clock: SimulatedClock) -> types.SimpleNamespace:
    """A stand-in for the `datetime` module whose `datetime.now` reads the local clock."""

    class ClockDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> datetime.datetime:  # type: ignore[override]
            return datetime.datetime.fromtimestamp(clock.now().timestamp(), tz)

    return types.SimpleNamespace(datetime=ClockDatetime, timezone=datetime.timezone, local_clock=True)


@contextlib.contextmanager
def entered_time_on(clock: SimulatedClock) -> Iterator[None]:
    """`$$.State.EnteredTime` from the local clock for the duration (moto's interpreter)."""
    import importlib

    module = importlib.import_module(_STATE_MODULE)
    base = getattr(module, "CommonStateField", None)
    body = getattr(base, "_eval_body", None)
    saved = getattr(module, "datetime", None)
    if not (saved is datetime or getattr(saved, "local_clock", False)) or body is None:
        raise RuntimeError(
            f"{_STATE_MODULE} no longer stamps states with its `datetime` module (a different moto "
            "version?): $$.State.EnteredTime would not follow the local clock; adapt "
            "autopilot/local/runtime/accelerated.py"
        )
    if _ENTERED_TIME_STAMP not in inspect.getsource(body):
        raise RuntimeError(
            f"{_STATE_MODULE}: CommonStateField._eval_body no longer stamps {_ENTERED_TIME_STAMP!r} "
            "(a different moto version?); adapt autopilot/local/runtime/accelerated.py"
        )
    module.datetime = _clock_datetime(clock)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        module.datetime = saved  # type: ignore[attr-defined]  # an enclosing runtime's clock, or none


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
        with entered_time_on(clock):
            yield
    finally:
        with _LOCK:
            Message.delay, WaitFunction._wait_interval = saved  # type: ignore[method-assign]
            shared_clock.reset()
