"""The controller's decision: desired state and the action that gets there without overlap."""

from __future__ import annotations

import pytest

from lambdas.serving.policy import (
    Action,
    Decision,
    Desired,
    Observation,
    Override,
    Policy,
    ServingState,
    decide,
    deferral_delay_seconds,
    max_polls,
    pending_ttl_seconds,
)

NOW = 1_000_000.0
RULES = Policy(idle_minutes=15, start_retry_limit=2, pending_ttl_seconds=240)


def observe(status: str | None = "STOPPED", backlog: int = 0, window: bool = False) -> Observation:
    return Observation(now=NOW, model_status=status, queue_backlog=backlog, in_window=window)


def run(state: ServingState, observation: Observation) -> Decision:
    return decide(state, observation, RULES)


def test_stopped_model_with_nothing_to_do_stays_stopped() -> None:
    decision = run(ServingState(), observe("STOPPED"))
    assert (decision.desired, decision.action) == (Desired.STOPPED, Action.NONE)


def test_deferred_work_starts_a_stopped_model() -> None:
    # Given detection deferred an image a minute ago and messages wait in the queue
    state = ServingState(deferred_at=NOW - 60, last_detection_at=NOW - 3600)
    # When the controller decides
    decision = run(state, observe("STOPPED", backlog=3))
    # Then it starts the model
    assert decision.action is Action.START
    assert "wait" in decision.reason


def test_deferral_marker_needs_messages_in_the_queue() -> None:
    state = ServingState(deferred_at=NOW - 60)
    assert run(state, observe("STOPPED", backlog=0)).action is Action.NONE


def test_stale_or_already_served_deferrals_are_not_work() -> None:
    stale = ServingState(deferred_at=NOW - 241)
    assert run(stale, observe("STOPPED", backlog=5)).action is Action.NONE
    # deferral older than the last detection: that work was done
    served = ServingState(deferred_at=NOW - 100, last_detection_at=NOW - 90)
    assert run(served, observe("RUNNING", backlog=5)).desired is Desired.RUNNING  # idle timer, not backlog
    assert "last detection" in run(served, observe("RUNNING", backlog=5)).reason


def test_idle_stop_happens_at_the_first_tick_after_the_timeout() -> None:
    # Given the last detection 14:59 ago the model keeps running
    assert run(ServingState(last_detection_at=NOW - 899), observe("RUNNING")).action is Action.NONE
    # When the timeout is reached, the same tick stops it
    decision = run(ServingState(last_detection_at=NOW - 900), observe("RUNNING"))
    assert (decision.desired, decision.action) == (Desired.STOPPED, Action.STOP)


def test_serving_window_keeps_the_model_running() -> None:
    assert run(ServingState(), observe("STOPPED", window=True)).action is Action.START
    assert run(ServingState(), observe("RUNNING", window=True)).action is Action.NONE


def test_start_override_and_stop_override() -> None:
    start = ServingState(override=Override(Desired.RUNNING, until=NOW + 60))
    assert run(start, observe("STOPPED")).action is Action.START
    # a stop override wins over waiting work and windows
    stop = ServingState(override=Override(Desired.STOPPED, until=NOW + 60), deferred_at=NOW - 1)
    assert run(stop, observe("RUNNING", backlog=10, window=True)).action is Action.STOP
    # an expired override is ignored
    expired = ServingState(override=Override(Desired.RUNNING, until=NOW - 1))
    assert run(expired, observe("RUNNING")).action is Action.STOP


@pytest.mark.parametrize("status", ["STARTING", "STOPPING"])
def test_never_acts_while_the_model_is_in_transition(status: str) -> None:
    assert run(ServingState(), observe(status)).action is Action.NONE
    assert run(ServingState(deferred_at=NOW), observe(status, backlog=1)).action is Action.NONE


def test_never_acts_while_a_transition_lock_is_live() -> None:
    locked = ServingState(transition="START", transition_expires_at=NOW + 10)
    assert run(locked, observe("RUNNING")).action is Action.NONE  # would otherwise stop
    expired = ServingState(transition="START", transition_expires_at=NOW - 10)
    assert run(expired, observe("RUNNING")).action is Action.STOP


def test_failed_start_is_retried_within_the_limit_then_given_up() -> None:
    wanted = {"override": Override(Desired.RUNNING, until=NOW + 600)}
    # attempts 1 and 2 failed: 1 + 2 retries allowed, so a third start happens
    assert run(ServingState(start_attempts=2, **wanted), observe("FAILED")).action is Action.START
    # the third failed too: give up
    decision = run(ServingState(start_attempts=3, **wanted), observe("FAILED"))
    assert decision.action is Action.NONE
    assert decision.gave_up


def test_attempts_reset_when_running_or_unwanted() -> None:
    wanted = ServingState(start_attempts=2, override=Override(Desired.RUNNING, until=NOW + 600))
    assert run(wanted, observe("RUNNING")).reset_attempts
    assert run(ServingState(start_attempts=3), observe("FAILED")).reset_attempts


def test_no_production_version_means_nothing_to_do() -> None:
    decision = run(ServingState(deferred_at=NOW), observe(None, backlog=4))
    assert decision.action is Action.NONE
    assert "no production version" in decision.reason


def test_unstartable_status_is_reported() -> None:
    decision = run(ServingState(deferred_at=NOW), observe("TRAINING_IN_PROGRESS", backlog=1))
    assert decision.action is Action.NONE
    assert "cannot be started" in decision.reason


def test_timing_helpers() -> None:
    assert deferral_delay_seconds(60) == 60
    assert deferral_delay_seconds(5000) == 900
    assert pending_ttl_seconds(60, 1) == 240
    assert max_polls(60) == 60
    assert max_polls(7) == 515


def test_the_idle_clock_of_a_freshly_started_model_starts_at_running() -> None:
    # Given a model recorded RUNNING 30 s ago, started for images whose last deferral (2 h ago)
    # and last detection (3 h ago) are both older than the 15 idle minutes
    state = ServingState(deferred_at=NOW - 7200, last_detection_at=NOW - 10800, running_since=NOW - 30)
    # When the controller decides with the queue empty
    decision = run(state, observe("RUNNING"))
    # Then the model keeps running: its 15 idle minutes count from RUNNING
    assert (decision.desired, decision.action) == (Desired.RUNNING, Action.NONE)
    assert decision.reason == "became RUNNING less than 900 s ago (idle threshold)"


def test_deferred_images_classified_with_the_first_ones_find_the_fresh_model_up() -> None:
    # Given the invocation that classified the first image also deferred the others (one time for
    # both markers, so they do not count as waiting) longer ago than the 60 s idle threshold and
    # the 122 s pending window, while the model was recorded RUNNING 10 s ago
    rules = Policy(idle_minutes=1, start_retry_limit=2, pending_ttl_seconds=122)
    state = ServingState(deferred_at=NOW - 130, last_detection_at=NOW - 130, running_since=NOW - 10)
    # Then the controller does not stop it
    assert decide(state, observe("RUNNING", backlog=20), rules).action is Action.NONE
    # And without the RUNNING record (the old behaviour) it would have stopped it
    unrecorded = ServingState(deferred_at=NOW - 130, last_detection_at=NOW - 130)
    assert decide(unrecorded, observe("RUNNING", backlog=20), rules).action is Action.STOP


def test_a_model_running_for_the_idle_threshold_without_work_is_stopped() -> None:
    # Given a model RUNNING for exactly 15 minutes with no detection since
    state = ServingState(last_detection_at=NOW - 10800, running_since=NOW - 900)
    # Then it is stopped as idle
    decision = run(state, observe("RUNNING"))
    assert decision.action is Action.STOP
    assert decision.reason == "no work for 900 s (idle threshold), outside serving windows"


def test_a_running_record_counts_only_while_the_model_is_running() -> None:
    # Given the item still says RUNNING since a minute ago but the model is STOPPED now (stopped
    # by hand, or it failed): nothing asks for it
    state = ServingState(running_since=NOW - 60)
    decision = run(state, observe("STOPPED"))
    assert (decision.desired, decision.action) == (Desired.STOPPED, Action.NONE)


def test_a_running_model_is_not_stopped_while_deferred_images_may_still_wait() -> None:
    # Given images deferred 100 s ago while the model started, a detection of other images since
    # (an idle minute ago), and messages still in the queue (delayed or in flight)
    rules = Policy(idle_minutes=1, start_retry_limit=2, pending_ttl_seconds=240)
    state = ServingState(deferred_at=NOW - 100, last_detection_at=NOW - 60)
    # Then the running model keeps running
    decision = decide(state, observe("RUNNING", backlog=20), rules)
    assert (decision.desired, decision.action) == (Desired.RUNNING, Action.NONE)
    assert decision.reason == "images deferred within the pending window may still wait in the queue"
    # But that alone does not start a stopped model (the deferred images mark the work again)
    assert decide(state, observe("STOPPED", backlog=20), rules).action is Action.NONE
    # And once the deferral is older than the pending window, or the queue is empty, it is stopped
    stale = ServingState(deferred_at=NOW - 241, last_detection_at=NOW - 60)
    assert decide(stale, observe("RUNNING", backlog=20), rules).action is Action.STOP
    assert decide(state, observe("RUNNING", backlog=0), rules).action is Action.STOP


def test_a_running_record_ahead_of_the_controllers_clock_is_ignored() -> None:
    # Given a RUNNING record a minute in the controller's future (two clocks that disagree)
    state = ServingState(running_since=NOW + 60)
    # Then it does not keep the model up: the idle clock falls back to the last detection
    assert run(state, observe("RUNNING")).action is Action.STOP
