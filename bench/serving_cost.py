"""Serving cost benchmark: what the model controller costs, and what waiting costs the images.

    python -m bench.serving_cost [--seeds 20] [--start-minutes 10] [--billing request-second]
                                 [--out bench/results/serving_cost.json]

Two seeded, week-long trace families are replayed in simulated time (10 s steps):

* bursty   business-day bursts, a trickle of single images, a few evening, night and weekend bursts;
* daily    recurring daily batches (a nightly export, and weekday batches at about the same times
           every day), plus a sparse trickle.

Policies:

* always_on            the model runs the whole week;
* fixed_hours          a fixed schedule, Mon-Fri 08:00-18:00 UTC (the serving-window code decides);
* autopilot            the default: the controller's real code (lambdas.serving.policy.decide with the
                       adaptive idle threshold of lambdas.serving.idle, idle_minutes 15) on 1-minute
                       ticks plus the on-demand pass detection asks for, deferred images retried every
                       `model_poll_seconds`; in steady state: its idle history is the one it learned on
                       the week before (another seed of the same family), as on a deployed project;
* autopilot_cold       the same, starting the week with an empty history (idle_minutes until it has
                       learned enough: the first week of a new project);
* idle_5, idle_15, idle_30   the same controller with a fixed idle timeout (the adaptive part off);
* oracle               zero-wait: knows the future, starts a start-duration before work arrives, stops
                       when it is done, runs through gaps shorter than a stop plus a start;
* wait_matched_oracle  starts when work arrives (so images wait as they do for the controller) and
                       knows when to stop: after the last image, it stops if running until the next
                       arrival would bill more than a stop and a restart (per started hour: it runs to
                       the end of the paid hour and stops there unless the next arrival falls within
                       the following hour).

Model timing: a start takes `--start-minutes` and is seen RUNNING at the state machine's next poll
(60 s), a stop one minute; capacity 5 images per second per inference unit. Wait = classification
time - upload time (10 s steps). Billing models (`--billing`; every one is reported in the detail
file): from the start request or from RUNNING, until STOPPED; per second, or per started hour of
each start-to-stop cycle. AWS documents billing as running hours x inference units ("Running a
trained Amazon Rekognition Custom Labels model"), and neither the granularity nor whether STARTING
and STOPPING count.

Output: `bench/results/serving_cost.json` as
``{"seeds": N, "policies": {"<name>": {"iu_hours": mean, "p95_wait_s": mean, "starts": mean}}}``,
means over the N seeds of both trace families, billed with `--billing`; and
`serving_cost_detail.json` beside it, with the same means per trace family and billing model.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lambdas.common.settings import ServingWindow
from lambdas.serving import idle, policy
from lambdas.serving.windows import in_window

STEP = 10  # simulated seconds per step
TICK = 60  # controller rate
POLL = 60  # model_poll_seconds: state machine poll and redelivery delay
STOP_SECONDS = 60
WEEK = 7 * 24 * 3600
WEEK_START = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday
TPS_PER_UNIT = 5
USD_PER_IU_HOUR = 4.0
DEFAULT_IDLE_MINUTES = 15
BUSINESS_HOURS = ServingWindow(cron="0 8 ? * MON-FRI *", minutes=600)
RESULTS = Path(__file__).resolve().parent / "results" / "serving_cost.json"

FAMILIES = ("bursty", "daily")
BILLING_MODELS = ("request-second", "running-second", "request-hour", "running-hour")
POLICIES = (
    "always_on",
    "fixed_hours",
    "autopilot",
    "autopilot_cold",
    "idle_5",
    "idle_15",
    "idle_30",
    "oracle",
    "wait_matched_oracle",
)


# --- arrival traces -----------------------------------------------------------------------------------
def _poisson(
    rng: random.Random, start: float, end: float, per_hour: float, action: Callable[[float], None]
) -> None:
    t = start
    while True:
        t += rng.expovariate(per_hour / 3600)
        if t >= end:
            return
        action(t)


def arrival_trace(seed: int) -> list[float]:
    """Upload times (seconds from Monday 00:00 UTC) of one bursty week."""
    rng = random.Random(seed)
    arrivals: list[float] = []

    def burst(at: float, mean_size: float) -> None:
        size = max(1, int(rng.lognormvariate(math.log(mean_size), 0.8)))
        duration = rng.uniform(30, 600)
        arrivals.extend(at + rng.uniform(0, duration) for _ in range(size))

    for day in range(7):
        base = day * 86400
        if day < 5:
            _poisson(rng, base + 8 * 3600, base + 18 * 3600, 1.2, lambda t: burst(t, 60))  # team uploads
            _poisson(rng, base + 7 * 3600, base + 20 * 3600, 0.6, arrivals.append)  # trickle
            _poisson(rng, base + 18 * 3600, base + 24 * 3600, 0.15, lambda t: burst(t, 15))  # evening jobs
            _poisson(rng, base, base + 7 * 3600, 0.05, lambda t: burst(t, 10))  # night batch
        else:
            _poisson(rng, base, base + 86400, 0.06, lambda t: burst(t, 25))  # weekend
    return sorted(t for t in arrivals if t < WEEK)


def daily_batch_trace(seed: int) -> list[float]:
    """Upload times of one week of recurring daily batches (same times every day, some jitter)."""
    rng = random.Random(seed * 7919 + 1)
    arrivals: list[float] = []

    def batch(at_hour: float, jitter_minutes: float, mean_size: float, minutes: float, base: float) -> None:
        start = base + at_hour * 3600 + rng.uniform(-jitter_minutes, jitter_minutes) * 60
        size = max(1, int(rng.lognormvariate(math.log(mean_size), 0.5)))
        arrivals.extend(start + rng.uniform(0, minutes * 60) for _ in range(size))

    for day in range(7):
        base = day * 86400
        batch(2.0, 10, 300, 12, base)  # nightly export, every day
        if day < 5:
            batch(9.0, 15, 100, 8, base)  # morning intake
            batch(13.5, 15, 150, 10, base)  # midday run
            batch(17.5, 20, 80, 6, base)  # end of day
        _poisson(rng, base, base + 86400, 0.1, arrivals.append)  # a few stray images
    return sorted(t for t in arrivals if 0 <= t < WEEK)


TRACES: dict[str, Callable[[int], list[float]]] = {"bursty": arrival_trace, "daily": daily_batch_trace}


# --- simulation ---------------------------------------------------------------------------------------
@dataclass
class Cycle:
    """One start-to-stop cycle of the model (simulated seconds)."""

    requested: float
    running: float | None = None
    stop_requested: float | None = None
    stopped: float | None = None


@dataclass
class Model:
    units: int
    start_seconds: int
    stop_seconds: int
    status: str = "STOPPED"
    ready_at: float = 0.0
    cycles: list[Cycle] = field(default_factory=list)

    def start(self, now: float) -> None:
        self.status = "STARTING"
        # The state machine sees RUNNING at its first poll after the start completes.
        self.ready_at = now + math.ceil(self.start_seconds / POLL) * POLL
        self.cycles.append(Cycle(requested=now))

    def stop(self, now: float) -> None:
        self.status = "STOPPING"
        self.ready_at = now + self.stop_seconds
        self.cycles[-1].stop_requested = now

    def advance(self, now: float) -> bool:
        """Completes a transition that is due; True when one ended."""
        if self.status in ("STARTING", "STOPPING") and now >= self.ready_at:
            if self.status == "STARTING":
                self.status = "RUNNING"
                self.cycles[-1].running = now
            else:
                self.status = "STOPPED"
                self.cycles[-1].stopped = now
            return True
        return False

    @property
    def starts(self) -> int:
        return sum(1 for cycle in self.cycles if cycle.requested >= 0)


def billed_iu_hours(cycles: list[Cycle], units: int, billing: str, end: float) -> float:
    """IU-hours of the cycles under a billing model (see the module docstring)."""
    origin, granularity = billing.split("-")
    total = 0.0
    for cycle in cycles:
        begin = cycle.requested if origin == "request" else cycle.running
        if begin is None:
            continue  # never reached RUNNING: nothing billed from RUNNING
        finish = cycle.stopped if cycle.stopped is not None else end
        seconds = max(0.0, finish - begin)
        if granularity == "hour":
            seconds = math.ceil(seconds / 3600) * 3600
        total += seconds * units
    return total / 3600


@dataclass
class Run:
    name: str
    cycles: list[Cycle]
    waits: list[float]
    starts: int
    end: float
    units: int
    memory: dict[str, Any] = field(default_factory=dict)

    def iu_hours(self, billing: str) -> float:
        return billed_iu_hours(self.cycles, self.units, billing, self.end)

    def p95_wait(self) -> float:
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0


def _moment(t: float) -> datetime:
    return WEEK_START + timedelta(seconds=t)


Controller = Callable[[float, Model, int, dict[str, Any]], str]


def simulate(
    name: str,
    arrivals: list[float],
    *,
    units: int,
    start_seconds: int,
    controller: Controller | None = None,
    always_on: bool = False,
    memory: dict[str, Any] | None = None,
) -> Run:
    """Steps the week; `controller(now, model, backlog, memory)` returns START, STOP or NONE."""
    model = Model(units, start_seconds, STOP_SECONDS)
    if always_on:
        model.status = "RUNNING"
        model.cycles.append(Cycle(requested=0.0, running=0.0))
    queue: deque[list[float]] = deque()  # [arrival, next attempt]
    waits: list[float] = []
    memory = {**(memory or {}), "last_detection_at": None, "deferred_at": None, "attempts": 0}
    capacity = units * TPS_PER_UNIT * STEP
    index, t = 0, 0.0
    horizon = WEEK + 3 * 86400  # time to drain what arrives late on Sunday, and to stop
    while t < horizon:
        done = t >= WEEK and not queue and index >= len(arrivals)
        if done and (always_on or model.status == "STOPPED"):
            break
        while index < len(arrivals) and arrivals[index] <= t:
            queue.append([arrivals[index], arrivals[index]])
            index += 1
        memory["next_arrival"] = arrivals[index] if index < len(arrivals) else None
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
                    item[1] = t + POLL  # re-sent with DelaySeconds
                    previous = memory["deferred_at"]
                    memory["deferred_at"] = t
                    on_demand = on_demand or previous is None or t - previous >= 60
        if model.advance(t) and model.status == "RUNNING":
            memory["attempts"] = 0
        if controller is not None and (on_demand or t % TICK == 0 or memory.get("every_step")):
            action = controller(t, model, len(queue), memory)
            if action == "START":
                model.start(t)
            elif action == "STOP":
                model.stop(t)
        t += STEP
    if always_on and model.cycles:
        model.cycles[-1].stopped = max(t, WEEK)
    return Run(name, model.cycles, waits, model.starts if not always_on else 0, t, units, memory)


def _finished(model: Model) -> idle.FinishedTransition | None:
    """The last transition as the SERVING item would show it once the state machine recorded it."""
    if not model.cycles or model.status in ("STARTING", "STOPPING"):
        return None
    cycle = model.cycles[-1]
    if model.status == "STOPPED" and cycle.stop_requested is not None and cycle.stopped is not None:
        return idle.FinishedTransition(idle.STOP, cycle.stop_requested, cycle.stopped, idle.STOPPED)
    if cycle.running is not None:
        return idle.FinishedTransition(idle.START, cycle.requested, cycle.running, idle.RUNNING)
    return None


def autopilot(
    idle_minutes: int = DEFAULT_IDLE_MINUTES,
    *,
    adaptive: bool = True,
    windows: tuple[ServingWindow, ...] = (),
) -> Controller:
    """The controller's decision code; `adaptive=False` keeps idle_minutes as a fixed timeout."""
    base = policy.Policy(
        idle_minutes=idle_minutes,
        start_retry_limit=2,
        pending_ttl_seconds=policy.pending_ttl_seconds(POLL, TICK // 60),
    )
    cache: dict[str, Any] = {"history": None, "threshold": None}

    def threshold_for(history: idle.IdleHistory) -> idle.IdleThreshold:
        if cache["history"] is not history:  # the choice only changes with the history
            cache["history"], cache["threshold"] = history, idle.choose_threshold(history, idle_minutes, TICK)
        return cache["threshold"]  # type: ignore[no-any-return]

    def decide(now: float, model: Model, backlog: int, memory: dict[str, Any]) -> str:
        history: idle.IdleHistory = memory.setdefault("idle", idle.IdleHistory())
        rules = base
        if adaptive:
            demands = [x for x in (memory["last_detection_at"], memory["deferred_at"]) if x is not None]
            updated = idle.update(
                history,
                latest_demand=max(demands) if demands else None,
                finished=_finished(model),
                now=now,
                tick_seconds=TICK,
            )
            if updated != history:
                memory["idle"] = history = updated
            rules = policy.Policy(
                idle_minutes=base.idle_minutes,
                start_retry_limit=base.start_retry_limit,
                pending_ttl_seconds=base.pending_ttl_seconds,
                idle_seconds=threshold_for(history).seconds,
            )
        busy = model.status in ("STARTING", "STOPPING")
        state = policy.ServingState(
            last_detection_at=memory["last_detection_at"],
            deferred_at=memory["deferred_at"],
            transition="BUSY" if busy else None,
            transition_expires_at=model.ready_at + 1 if busy else None,
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


def fixed_hours(now: float, model: Model, backlog: int, memory: dict[str, Any]) -> str:
    inside = in_window((BUSINESS_HOURS,), _moment(now))
    if inside and model.status == "STOPPED":
        return "START"
    if not inside and model.status == "RUNNING":
        return "STOP"
    return "NONE"


def wait_matched_oracle(billing: str) -> Controller:
    """Starts when work arrives; stops after the last image when that is cheaper, knowing the next arrival."""
    origin, granularity = billing.split("-")

    def decide(now: float, model: Model, backlog: int, memory: dict[str, Any]) -> str:
        memory["every_step"] = True  # it may stop at any step, not only at ticks
        if model.status == "STOPPED":
            return "START" if backlog else "NONE"
        if model.status != "RUNNING" or backlog:
            return "NONE"
        upcoming = memory["next_arrival"]
        if upcoming is None:
            return "STOP"
        gap = upcoming - now
        if granularity == "second":
            # Billed seconds of a stop and a restart; running through the gap costs `gap`.
            restart = model.stop_seconds + (
                math.ceil(model.start_seconds / POLL) * POLL if origin == "request" else 0
            )
            return "STOP" if gap > restart else "NONE"
        cycle = model.cycles[-1]
        begin = cycle.requested if origin == "request" else (cycle.running or now)
        paid_until = begin + max(1, math.ceil((now - begin) / 3600)) * 3600
        if now + model.stop_seconds + STEP <= paid_until:
            return "NONE"  # this hour is paid: keep serving
        # Last chance to stop within the paid hour: bridge only if the next arrival falls within the next one.
        return "STOP" if upcoming > paid_until + 3600 - model.stop_seconds else "NONE"

    return decide


def oracle(arrivals: list[float], *, units: int, start_seconds: int, served: Run) -> Run:
    """Zero wait: busy periods from an always-on run, each preceded by a start; gaps shorter than a
    stop plus a start are bridged (running through them is cheaper)."""
    finish = sorted(a + w for a, w in zip(arrivals, served.waits, strict=True))
    periods: list[list[float]] = []
    for arrival, done in zip(arrivals, finish, strict=True):
        begin, end = arrival, done + STEP
        if periods and begin - periods[-1][1] <= start_seconds + STOP_SECONDS:
            periods[-1][1] = max(periods[-1][1], end)
        else:
            periods.append([begin, end])
    cycles = [
        Cycle(requested=begin - start_seconds, running=begin, stop_requested=end, stopped=end + STOP_SECONDS)
        for begin, end in periods
    ]
    return Run("oracle", cycles, served.waits, len(periods), served.end, units)


# --- one seed, many seeds ------------------------------------------------------------------------------
def run_seed(
    family: str, seed: int, start_minutes: int, units: int = 1
) -> dict[str, dict[str, dict[str, float]]]:
    """{billing: {policy: {"iu_hours", "p95_wait_s", "starts"}}} for one trace."""
    arrivals = TRACES[family](seed)
    start = start_minutes * 60

    def sim(
        name: str,
        controller: Controller | None = None,
        always_on: bool = False,
        trace: list[float] = arrivals,
    ) -> Run:
        return simulate(
            name, trace, units=units, start_seconds=start, controller=controller, always_on=always_on
        )

    # The week before (another seed of the family) teaches the steady-state controller its history;
    # gaps and durations carry over, times that belong to that week do not.
    before = sim("autopilot", autopilot(), trace=TRACES[family](seed + 1000)).memory["idle"]
    learned = replace(before, demand_at=None, quiet=False, measured_transition_at=None)
    always = sim("always_on", always_on=True)
    runs = [
        always,
        sim("fixed_hours", fixed_hours),
        simulate(
            "autopilot",
            arrivals,
            units=units,
            start_seconds=start,
            controller=autopilot(),
            memory={"idle": learned},
        ),
        sim("autopilot_cold", autopilot()),
        *(sim(f"idle_{m}", autopilot(m, adaptive=False)) for m in (5, 15, 30)),
        oracle(arrivals, units=units, start_seconds=start, served=always),
    ]
    report: dict[str, dict[str, dict[str, float]]] = {}
    for billing in BILLING_MODELS:
        matched = sim("wait_matched_oracle", wait_matched_oracle(billing))
        report[billing] = {
            r.name: {"iu_hours": r.iu_hours(billing), "p95_wait_s": r.p95_wait(), "starts": float(r.starts)}
            for r in (*runs, matched)
        }
    return report


def _mean(rows: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        name: {
            metric: round(statistics.fmean(row[name][metric] for row in rows), 2) for metric in rows[0][name]
        }
        for name in POLICIES
    }


def run(
    seeds: int = 20, start_minutes: int = 10, units: int = 1, families: tuple[str, ...] = FAMILIES
) -> dict[str, Any]:
    """Means per family and billing model over seeds 1..N, and pooled over the families."""
    per_seed = {
        family: [run_seed(family, seed, start_minutes, units) for seed in range(1, seeds + 1)]
        for family in families
    }
    detail: dict[str, Any] = {
        "seeds": seeds,
        "start_minutes": start_minutes,
        "inference_units": units,
        "usd_per_iu_hour": USD_PER_IU_HOUR,
        "controller_rate_minutes": TICK // 60,
        "model_poll_seconds": POLL,
        "families": {},
        "pooled": {},
    }
    for billing in BILLING_MODELS:
        for family in families:
            detail["families"].setdefault(family, {})[billing] = _mean(
                [row[billing] for row in per_seed[family]]
            )
        detail["pooled"][billing] = _mean([row[billing] for family in families for row in per_seed[family]])
    return detail


def contract(detail: dict[str, Any], billing: str) -> dict[str, Any]:
    """The result file's format: {"seeds": N, "policies": {name: {iu_hours, p95_wait_s, starts}}}."""
    return {"seeds": detail["seeds"], "policies": detail["pooled"][billing]}


def targets(policies: dict[str, dict[str, float]], start_minutes: int) -> dict[str, Any]:
    """The default policy against the wait-matched oracle, always-on, and one start plus one tick."""
    ours, matched, always = policies["autopilot"], policies["wait_matched_oracle"], policies["always_on"]
    wait_bound = math.ceil(start_minutes * 60 / POLL) * POLL + TICK
    return {
        "vs_wait_matched_oracle": round(ours["iu_hours"] / matched["iu_hours"], 3),
        "vs_always_on": round(ours["iu_hours"] / always["iu_hours"], 3),
        "p95_wait_s": ours["p95_wait_s"],
        "p95_wait_bound_s": wait_bound,
        "met": ours["iu_hours"] <= 1.2 * matched["iu_hours"]
        and ours["iu_hours"] <= 0.2 * always["iu_hours"]
        and ours["p95_wait_s"] <= wait_bound,
    }


def table(policies: dict[str, dict[str, float]], title: str) -> str:
    lines = [title, f"{'policy':22} {'IU-h':>7} {'USD':>7} {'p95 wait s':>11} {'starts':>7}"]
    for name in POLICIES:
        row = policies[name]
        lines.append(
            f"{name:22} {row['iu_hours']:7.1f} {row['iu_hours'] * USD_PER_IU_HOUR:7.0f} "
            f"{row['p95_wait_s']:11.0f} {row['starts']:7.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds 1..N of each trace family (default 20)")
    parser.add_argument("--start-minutes", type=int, default=10)
    parser.add_argument("--units", type=int, default=1)
    parser.add_argument("--billing", choices=BILLING_MODELS, default="request-second")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated: bursty,daily")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    families = tuple(name.strip() for name in args.families.split(",") if name.strip())
    unknown = [name for name in families if name not in TRACES]
    if args.seeds < 1 or unknown or not families:
        parser.error(
            f"--seeds must be >= 1 and --families a list of {', '.join(FAMILIES)} (got {args.families!r})"
        )
    detail = run(args.seeds, args.start_minutes, args.units, families)
    result = contract(detail, args.billing)
    detail["targets"] = {
        billing: {
            "pooled": targets(detail["pooled"][billing], args.start_minutes),
            **{f: targets(detail["families"][f][billing], args.start_minutes) for f in families},
        }
        for billing in BILLING_MODELS
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    detail_path = args.out.with_name(args.out.stem + "_detail.json")
    detail_path.write_text(json.dumps(detail, indent=2) + "\n", encoding="utf-8")
    for billing in BILLING_MODELS:
        for family in families:
            print(
                table(
                    detail["families"][family][billing], f"\n{family}, billed {billing}, {args.seeds} seeds"
                )
            )
            print(f"targets: {detail['targets'][billing][family]}")
    print(f"\nwritten to {args.out} ({args.billing}, both families pooled) and {detail_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
