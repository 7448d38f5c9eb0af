"""The adaptive idle threshold: the history it learns from and the threshold it picks."""

from __future__ import annotations

from lambdas.serving.idle import (
    MAX_DURATIONS,
    MAX_GAPS,
    FinishedTransition,
    IdleHistory,
    choose_threshold,
    expected_cost,
    observe_demand,
    observe_transition,
    update,
)

TICK = 60.0
MEASURED = IdleHistory(start_seconds=(600.0,), stop_seconds=(60.0,))  # a restart costs 660 s


def with_gaps(*gaps: float) -> IdleHistory:
    return IdleHistory(gaps=gaps, start_seconds=MEASURED.start_seconds, stop_seconds=MEASURED.stop_seconds)


def test_short_history_falls_back_to_idle_minutes() -> None:
    # Given only three gaps recorded and no stop measured yet
    history = IdleHistory(gaps=(7200.0, 7200.0, 7200.0), start_seconds=(600.0,))
    # When the threshold is chosen
    threshold = choose_threshold(history, idle_minutes=15, tick_seconds=TICK)
    # Then idle_minutes applies, and the reason says why
    assert (threshold.seconds, threshold.adaptive) == (900.0, False)
    assert "3 of 8 idle gaps" in threshold.reason
    assert "no measured stop" in threshold.reason


def test_long_gaps_stop_the_model_after_one_tick() -> None:
    # Given every idle gap lasted two hours, far longer than a 660 s restart
    threshold = choose_threshold(with_gaps(*[7200.0] * 10), idle_minutes=15, tick_seconds=TICK)
    # Then waiting longer than the floor (one tick) only adds idle time
    assert (threshold.seconds, threshold.adaptive) == (60.0, True)
    assert "adaptive" in threshold.reason
    assert "restart costs 660 s" in threshold.reason


def test_gaps_shorter_than_a_restart_are_bridged() -> None:
    # Given idle gaps of 8 minutes: running through one (480 s) costs less than 60 s + a 660 s restart
    threshold = choose_threshold(with_gaps(*[480.0] * 9, 7200.0), idle_minutes=15, tick_seconds=TICK)
    assert threshold.seconds == 480.0


def test_idle_minutes_caps_the_threshold() -> None:
    # Given gaps of 10 and 20 minutes and a 30-minute restart: bridging all of them (1200 s) would
    # be cheapest, but the model must never idle longer than idle_minutes (900 s)
    history = IdleHistory(gaps=(600.0,) * 5 + (1200.0,) * 5, start_seconds=(1740.0,), stop_seconds=(60.0,))
    threshold = choose_threshold(history, idle_minutes=15, tick_seconds=TICK)
    # Then the best threshold within the cap bridges the 10-minute gaps
    # (600 s: (5 x 600 + 5 x (600 + 1800)) / 10 = 1500 s per gap, against 1650 s at 900 s)
    assert threshold.seconds == 600.0
    assert "1500 s per gap" in threshold.reason


def test_expected_cost_counts_a_restart_for_every_gap_longer_than_the_threshold() -> None:
    # 100 s bridged, 1000 s stopped after 300 s plus a 600 s restart: (100 + 900) / 2
    assert expected_cost((100.0, 1000.0), 300.0, 600.0) == 500.0


def test_a_gap_is_recorded_once_a_pass_saw_quiet() -> None:
    # Given demand at t=100, seen by a pass at t=130 (less than a tick later: not quiet yet)
    history = observe_demand(IdleHistory(), 100.0, now=130.0, tick_seconds=TICK)
    assert (history.demand_at, history.quiet, history.gaps) == (100.0, False, ())
    # When a pass a tick later sees nothing new, the idle period is established
    history = observe_demand(history, 100.0, now=170.0, tick_seconds=TICK)
    assert history.quiet
    # Then the next demand (t=1000) closes a 900 s gap
    history = observe_demand(history, 1000.0, now=1010.0, tick_seconds=TICK)
    assert (history.gaps, history.demand_at, history.quiet) == ((900.0,), 1000.0, False)


def test_demand_on_every_tick_records_no_gap() -> None:
    history = IdleHistory()
    for second in range(0, 600, 60):
        history = observe_demand(history, second + 50.0, now=second + 60.0, tick_seconds=TICK)
    assert history.gaps == ()


def test_gaps_are_bounded_to_the_newest() -> None:
    history = IdleHistory(demand_at=0.0, quiet=True)
    for index in range(1, MAX_GAPS + 11):
        history = observe_demand(history, index * 1000.0, now=index * 1000.0, tick_seconds=TICK)
        history = observe_demand(history, index * 1000.0, now=index * 1000.0 + 60, tick_seconds=TICK)
    assert len(history.gaps) == MAX_GAPS == 64


def test_transition_durations_are_measured_once() -> None:
    # Given a start requested at t=1000 that the state machine recorded RUNNING at t=1600
    started = FinishedTransition("START", 1000.0, 1600.0, "RUNNING")
    history = observe_transition(IdleHistory(), started)
    assert history.start_seconds == (600.0,)
    # When later passes see the same record, nothing is added
    assert observe_transition(history, started) == history
    # Then a stop adds to the stop durations
    stopped = observe_transition(history, FinishedTransition("STOP", 2000.0, 2070.0, "STOPPED"))
    assert stopped.stop_seconds == (70.0,)


def test_failed_or_implausible_transitions_are_not_durations() -> None:
    failed = observe_transition(IdleHistory(), FinishedTransition("START", 1000.0, 1300.0, "FAILED"))
    assert (failed.start_seconds, failed.measured_transition_at) == ((), 1000.0)
    # a record from another clock (six days apart) is not a duration
    skewed = observe_transition(
        IdleHistory(), FinishedTransition("START", 1000.0, 1000.0 + 6 * 86400, "RUNNING")
    )
    assert skewed.start_seconds == ()
    unfinished = FinishedTransition("START", 1000.0, None, None)
    assert observe_transition(IdleHistory(), unfinished) == IdleHistory()


def test_durations_are_bounded() -> None:
    history = IdleHistory()
    for index in range(MAX_DURATIONS + 3):
        started = float(index * 10_000)
        history = observe_transition(
            history, FinishedTransition("START", started, started + 500 + index, "RUNNING")
        )
    assert len(history.start_seconds) == MAX_DURATIONS == 8
    assert history.start_seconds[-1] == 510.0


def test_update_applies_demand_and_transition() -> None:
    history = update(
        IdleHistory(demand_at=100.0, quiet=True),
        latest_demand=4000.0,
        finished=FinishedTransition("STOP", 200.0, 260.0, "STOPPED"),
        now=4010.0,
        tick_seconds=TICK,
    )
    assert (history.gaps, history.stop_seconds) == ((3900.0,), (60.0,))
