"""The adaptive idle threshold: how long an idle model keeps running, learned from the project's past.

No AWS here (like policy.py). The controller keeps an `IdleHistory` on the SERVING item and, on
every pass, feeds it what it sees (`update`); `choose_threshold` then picks the idle time after
which an idle model is stopped. The cost benchmark runs the same functions in simulated time.

Idle gaps. Demand is a detection (the model served an image) or a deferral (an image waited for
the model). A gap is the time from the end of one stretch of demand to the next demand. The
controller sees demand only as the latest detection and deferral times on the SERVING item, so
gaps are measured at its tick: a gap is recorded once a pass at least one tick after the latest
demand saw nothing newer, and it ends at the latest demand the next pass sees (at most about one
tick after the real first one; exact when the model was stopped, since a deferral asks for a pass
at once). Gaps shorter than about a tick are not recorded: every threshold keeps running through
them, so they cost the same under every choice.

Transition durations. A start is measured from the controller's start request
(`transition_started_at`) to the state machine's record of RUNNING (`status_changed_at`, the
time it saw the status at its poll); a stop likewise up to STOPPED. These are the durations the
model's own transitions took, poll rounding included, which is what a restart costs.

The choice (the rent-or-buy trade-off). Keeping an idle model running through a gap of g seconds
costs g; stopping it after t < g seconds costs t plus a restart, R = start + stop (both billed:
AWS bills running hours and does not document whether STARTING and STOPPING count, so they are
counted). Over the recorded gaps, the expected cost of threshold t is the mean of
``g if g <= t else t + R``; the threshold is the t with the lowest expected cost, among one tick,
the recorded gaps and `idle_minutes` (ties go to the longer one: fewer starts, less waiting).

`idle_minutes` bounds it: it is the cap (an idle model never runs longer than the setting says),
and the fallback while the history is short (fewer than MIN_GAPS gaps, or no measured start or
stop). The floor is one controller tick, the shortest idle time the controller can act on.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace

MAX_GAPS = 64  # idle gaps kept per project (newest)
MAX_DURATIONS = 8  # measured starts and stops kept per project (newest)
MIN_GAPS = 8  # below this the history is short and idle_minutes applies
MAX_TRANSITION_SECONDS = 3600 + 300  # longer "durations" are clock mismatches, not measurements

START = "START"
STOP = "STOP"
RUNNING = "RUNNING"
STOPPED = "STOPPED"


@dataclass(frozen=True)
class IdleHistory:
    """What the SERVING item remembers to choose the idle threshold (times in epoch seconds)."""

    gaps: tuple[float, ...] = ()
    start_seconds: tuple[float, ...] = ()
    stop_seconds: tuple[float, ...] = ()
    demand_at: float | None = None  # latest demand a pass has seen
    quiet: bool = False  # a pass at least one tick after demand_at saw no newer demand
    measured_transition_at: float | None = None  # started_at of the last transition measured
    revision: int = 0  # optimistic concurrency on the SERVING item


@dataclass(frozen=True)
class FinishedTransition:
    """The last transition the controller requested, as the SERVING item tells it."""

    kind: str  # START | STOP
    started_at: float  # the controller's request
    ended_at: float | None  # when the state machine recorded the outcome (None: not yet)
    status: str | None  # the status it recorded


@dataclass(frozen=True)
class IdleThreshold:
    seconds: float
    adaptive: bool
    reason: str


def _push(values: tuple[float, ...], value: float, limit: int) -> tuple[float, ...]:
    return (*values, round(value, 3))[-limit:]


def observe_demand(
    history: IdleHistory, latest_demand: float | None, now: float, tick_seconds: float
) -> IdleHistory:
    """Records a gap when demand resumes after a pass saw quiet; marks quiet after a tick without demand."""
    if latest_demand is None:
        return history
    if history.demand_at is None or latest_demand > history.demand_at:
        gaps = history.gaps
        if history.demand_at is not None and history.quiet:
            gaps = _push(gaps, latest_demand - history.demand_at, MAX_GAPS)
        return replace(history, gaps=gaps, demand_at=latest_demand, quiet=False)
    if not history.quiet and now - history.demand_at >= tick_seconds:
        return replace(history, quiet=True)
    return history


def observe_transition(history: IdleHistory, finished: FinishedTransition | None) -> IdleHistory:
    """Adds the duration of a transition that ended since the last pass (once per transition)."""
    if finished is None or finished.ended_at is None or finished.ended_at < finished.started_at:
        return history
    if history.measured_transition_at == finished.started_at:
        return history
    measured = replace(history, measured_transition_at=finished.started_at)
    seconds = finished.ended_at - finished.started_at
    if not 0 < seconds <= MAX_TRANSITION_SECONDS:
        return measured
    if finished.kind == START and finished.status == RUNNING:
        return replace(measured, start_seconds=_push(history.start_seconds, seconds, MAX_DURATIONS))
    if finished.kind == STOP and finished.status == STOPPED:
        return replace(measured, stop_seconds=_push(history.stop_seconds, seconds, MAX_DURATIONS))
    return measured  # a failed start or stop says nothing about how long a good one takes


def update(
    history: IdleHistory,
    *,
    latest_demand: float | None,
    finished: FinishedTransition | None,
    now: float,
    tick_seconds: float,
) -> IdleHistory:
    return observe_transition(observe_demand(history, latest_demand, now, tick_seconds), finished)


def expected_cost(gaps: tuple[float, ...], threshold: float, restart_seconds: float) -> float:
    """Mean billed seconds per idle gap when an idle model is stopped after `threshold` seconds."""
    return sum(g if g <= threshold else threshold + restart_seconds for g in gaps) / len(gaps)


def choose_threshold(history: IdleHistory, idle_minutes: int, tick_seconds: float) -> IdleThreshold:
    cap = idle_minutes * 60.0
    floor = min(float(tick_seconds), cap)
    missing = []
    if len(history.gaps) < MIN_GAPS:
        missing.append(f"{len(history.gaps)} of {MIN_GAPS} idle gaps")
    if not history.start_seconds:
        missing.append("no measured start")
    if not history.stop_seconds:
        missing.append("no measured stop")
    if missing:
        return IdleThreshold(
            cap, False, f"idle_minutes ({idle_minutes} min): history too short ({', '.join(missing)})"
        )

    start = statistics.median(history.start_seconds)
    stop = statistics.median(history.stop_seconds)
    restart = start + stop
    candidates = sorted({floor, cap, *(g for g in history.gaps if floor < g < cap)})
    costs = {t: expected_cost(history.gaps, t, restart) for t in candidates}
    best = min(costs.values())
    chosen = max(t for t, cost in costs.items() if cost <= best + 1e-9)
    return IdleThreshold(
        chosen,
        True,
        f"adaptive: stopping after {chosen:.0f} s idle costs {costs[chosen]:.0f} s per gap on average "
        f"over the last {len(history.gaps)} idle gaps, against {costs[cap]:.0f} s for idle_minutes "
        f"({idle_minutes} min); "
        f"a restart costs {restart:.0f} s (start {start:.0f} s + stop {stop:.0f} s, medians of "
        f"{len(history.start_seconds)} and {len(history.stop_seconds)} measured)",
    )
