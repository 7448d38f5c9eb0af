"""Serving cost benchmark: what the model controller saves, and what waiting costs the images.

    python -m bench.serving_cost [--seed 7] [--start-minutes 10] [--out bench/results/serving_cost.json]

A seeded, week-long, bursty arrival trace (business-day bursts, a trickle of single images, a
few night and weekend bursts) is replayed in simulated time against:

* always-on          the model runs the whole week;
* business-hours     a fixed schedule, Mon-Fri 08:00-18:00 UTC (the serving-window code decides);
* autopilot          the controller's real decision function (lambdas.serving.policy.decide) on
                     1-minute ticks plus the on-demand pass detection asks for, with deferred images
                     retried every `model_poll_seconds`; idle timeouts of 5, 15 (default) and 30 min;
* oracle             knows the future: starts exactly `start` minutes before work arrives, stops
                     when it is done, and keeps running through gaps shorter than a restart.

Model timing: a start takes `--start-minutes` (Custom Labels: minutes, up to about 30), a stop
one minute; capacity 5 images per second per inference unit. Billing is counted from the start
request until STOPPED (an upper bound: STARTING and STOPPING are billed). Wait = classification
time - upload time.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lambdas.common.settings import ServingWindow
from lambdas.serving import policy
from lambdas.serving.windows import in_window

STEP = 10  # simulated seconds per step
WEEK = 7 * 24 * 3600
WEEK_START = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday
TPS_PER_UNIT = 5
USD_PER_IU_HOUR = 4.0
BUSINESS_HOURS = ServingWindow(cron="0 8 ? * MON-FRI *", minutes=600)
RESULTS = Path(__file__).resolve().parent / "results" / "serving_cost.json"


# --- arrival trace ----------------------------------------------------------------------------------
def arrival_trace(seed: int) -> list[float]:
    """Upload times (seconds from Monday 00:00 UTC) of one bursty week."""
    rng = random.Random(seed)
    arrivals: list[float] = []

    def burst(at: float, mean_size: float) -> None:
        size = max(1, int(rng.lognormvariate(math.log(mean_size), 0.8)))
        duration = rng.uniform(30, 600)
        arrivals.extend(at + rng.uniform(0, duration) for _ in range(size))

    def poisson(start: float, end: float, per_hour: float, action: Callable[[float], None]) -> None:
        t = start
        while True:
            t += rng.expovariate(per_hour / 3600)
            if t >= end:
                return
            action(t)

    for day in range(7):
        base = day * 86400
        weekday = day < 5
        if weekday:
            poisson(base + 8 * 3600, base + 18 * 3600, 1.2, lambda t: burst(t, 60))  # team uploads
            poisson(base + 7 * 3600, base + 20 * 3600, 0.6, lambda t: arrivals.append(t))  # trickle
            poisson(base + 18 * 3600, base + 24 * 3600, 0.15, lambda t: burst(t, 15))  # evening jobs
            poisson(base, base + 7 * 3600, 0.05, lambda t: burst(t, 10))  # night batch
        else:
            poisson(base, base + 86400, 0.06, lambda t: burst(t, 25))  # weekend
    return sorted(t for t in arrivals if t < WEEK)


# --- simulation ---------------------------------------------------------------------------------------
@dataclass
class Model:
    units: int
    start_seconds: int
    stop_seconds: int
    status: str = "STOPPED"
    ready_at: float = 0.0
    billed_seconds: float = 0.0
    starts: int = 0

    def start(self, now: float, poll_seconds: int) -> None:
        self.status = "STARTING"
        # The state machine sees RUNNING at its first poll after the start completes.
        self.ready_at = now + math.ceil(self.start_seconds / poll_seconds) * poll_seconds
        self.starts += 1

    def stop(self, now: float) -> None:
        self.status = "STOPPING"
        self.ready_at = now + self.stop_seconds

    def advance(self, now: float) -> bool:
        """Completes a transition that is due; True when one ended."""
        if self.status in ("STARTING", "STOPPING") and now >= self.ready_at:
            self.status = "RUNNING" if self.status == "STARTING" else "STOPPED"
            return True
        return False

    def bill(self, seconds: float) -> None:
        if self.status != "STOPPED":
            self.billed_seconds += seconds * self.units


@dataclass
class Outcome:
    name: str
    iu_hours: float
    waits: list[float] = field(default_factory=list)
    starts: int = 0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.waits)

        def pct(p: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1) if ordered else 0.0

        return {
            "policy": self.name,
            "iu_hours": round(self.iu_hours, 2),
            "usd": round(self.iu_hours * USD_PER_IU_HOUR, 2),
            "p50_wait_s": pct(0.50),
            "p95_wait_s": pct(0.95),
            "max_wait_s": round(ordered[-1], 1) if ordered else 0.0,
            "starts": self.starts,
            "images": len(self.waits),
        }


def _moment(t: float) -> datetime:
    return WEEK_START + timedelta(seconds=t)


def simulate(
    name: str,
    arrivals: list[float],
    *,
    units: int,
    start_seconds: int,
    stop_seconds: int = 60,
    controller: Callable[[float, Model, int, dict[str, Any]], str] | None = None,
    poll_seconds: int = 60,
    tick_seconds: int = 60,
    always_on: bool = False,
) -> Outcome:
    """Steps the week; `controller(now, model, backlog, memory)` returns START, STOP or NONE."""
    model = Model(units, start_seconds, stop_seconds, status="RUNNING" if always_on else "STOPPED")
    queue: deque[list[float]] = deque()  # [arrival, next attempt]
    waits: list[float] = []
    memory: dict[str, Any] = {"last_detection_at": None, "deferred_at": None, "attempts": 0}
    capacity = units * TPS_PER_UNIT * STEP
    index, t = 0, 0.0
    end = WEEK + 3 * 86400  # leave time to drain what arrives late on Sunday
    while t < end and (t < WEEK or queue or index < len(arrivals)):
        while index < len(arrivals) and arrivals[index] <= t:
            queue.append([arrivals[index], arrivals[index]])
            index += 1
        on_demand = False
        if model.status == "RUNNING":
            served = 0
            for _ in range(len(queue)):
                item = queue.popleft()
                if item[1] <= t and served < capacity:
                    waits.append(t - item[0])
                    served += 1
                    memory["last_detection_at"] = t
                else:
                    queue.append(item)
        else:
            for item in queue:
                if item[1] <= t:
                    item[1] = t + poll_seconds  # re-sent with DelaySeconds
                    previous = memory["deferred_at"]
                    memory["deferred_at"] = t
                    on_demand = on_demand or previous is None or t - previous >= 60
        if model.advance(t) and model.status == "RUNNING":
            memory["attempts"] = 0
        if controller is not None and (on_demand or t % tick_seconds == 0):
            action = controller(t, model, len(queue), memory)
            if action == "START":
                model.start(t, poll_seconds)
            elif action == "STOP":
                model.stop(t)
        model.bill(STEP)
        t += STEP
    return Outcome(name, model.billed_seconds / 3600, waits, model.starts)


def autopilot(idle_minutes: int, poll_seconds: int = 60, windows: tuple[ServingWindow, ...] = ()) -> Callable:
    rules = policy.Policy(
        idle_minutes=idle_minutes,
        start_retry_limit=2,
        pending_ttl_seconds=policy.pending_ttl_seconds(poll_seconds, 1),
    )

    def decide(now: float, model: Model, backlog: int, memory: dict[str, Any]) -> str:
        state = policy.ServingState(
            last_detection_at=memory["last_detection_at"],
            deferred_at=memory["deferred_at"],
            transition="BUSY" if model.status in ("STARTING", "STOPPING") else None,
            transition_expires_at=model.ready_at + 1 if model.status in ("STARTING", "STOPPING") else None,
            start_attempts=memory["attempts"],
        )
        observation = policy.Observation(
            now=now,
            model_status=model.status,
            queue_backlog=backlog,
            in_window=in_window(windows, _moment(now)),
        )
        decision = policy.decide(state, observation, rules)
        if decision.action is policy.Action.START:
            memory["attempts"] += 1
        return decision.action.value

    return decide


def business_hours(now: float, model: Model, backlog: int, memory: dict[str, Any]) -> str:
    inside = in_window((BUSINESS_HOURS,), _moment(now))
    if inside and model.status == "STOPPED":
        return "START"
    if not inside and model.status == "RUNNING":
        return "STOP"
    return "NONE"


def oracle(arrivals: list[float], *, units: int, start_seconds: int, stop_seconds: int = 60) -> Outcome:
    """Perfect foresight: busy periods from an always-on run, each preceded by a start; gaps
    shorter than a stop plus a start are bridged (running through them is cheaper)."""
    served = simulate("always-on", arrivals, units=units, start_seconds=start_seconds, always_on=True)
    finish = sorted(a + w for a, w in zip(arrivals, served.waits, strict=True))
    periods: list[list[float]] = []
    for arrival, done in zip(arrivals, finish, strict=True):
        begin, end = arrival, done + STEP
        if periods and begin - periods[-1][1] <= start_seconds + stop_seconds:
            periods[-1][1] = max(periods[-1][1], end)
        else:
            periods.append([begin, end])
    billed = sum(end - begin + start_seconds + stop_seconds for begin, end in periods) * units
    return Outcome("oracle", billed / 3600, served.waits, len(periods))


def run(seed: int, start_minutes: int, units: int = 1) -> dict[str, Any]:
    arrivals = arrival_trace(seed)
    start = start_minutes * 60
    outcomes = [
        simulate("always-on", arrivals, units=units, start_seconds=start, always_on=True),
        simulate(
            "business-hours (Mon-Fri 08-18)",
            arrivals,
            units=units,
            start_seconds=start,
            controller=business_hours,
        ),
    ]
    for idle in (5, 15, 30):
        label = f"autopilot idle {idle} min" + (" (default)" if idle == 15 else "")
        outcomes.append(
            simulate(label, arrivals, units=units, start_seconds=start, controller=autopilot(idle))
        )
    outcomes.append(oracle(arrivals, units=units, start_seconds=start))
    return {
        "seed": seed,
        "images": len(arrivals),
        "start_minutes": start_minutes,
        "inference_units": units,
        "usd_per_iu_hour": USD_PER_IU_HOUR,
        "controller_rate_minutes": 1,
        "model_poll_seconds": 60,
        "policies": [outcome.summary() for outcome in outcomes],
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        f"{report['images']} images in one week (seed {report['seed']}), "
        f"start {report['start_minutes']} min, {report['inference_units']} IU, "
        f"{report['usd_per_iu_hour']} USD/IU-hour",
        f"{'policy':34} {'IU-h':>7} {'USD':>8} {'p50 s':>8} {'p95 s':>8} {'max s':>9} {'starts':>6}",
    ]
    for row in report["policies"]:
        lines.append(
            f"{row['policy']:34} {row['iu_hours']:7.1f} {row['usd']:8.0f} {row['p50_wait_s']:8.0f} "
            f"{row['p95_wait_s']:8.0f} {row['max_wait_s']:9.0f} {row['starts']:6d}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start-minutes", type=int, default=10)
    parser.add_argument("--units", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    report = run(args.seed, args.start_minutes, args.units)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(table(report))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
