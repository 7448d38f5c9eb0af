"""The SERVING item: monotonic markers, overrides and the conditional transition lock (moto DynamoDB)."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.serving.idle import FinishedTransition, IdleHistory
from lambdas.serving.policy import Desired
from lambdas.serving.state import ServingStore, serving_key
from tests.unit.conftest import STATE_TABLE


@pytest.fixture
def store(state_table: Any) -> ServingStore:
    return ServingStore(STATE_TABLE, state_table)


def test_empty_item_loads_as_default_state(store: ServingStore) -> None:
    state = store.load("digits")
    assert state.last_detection_at is None
    assert state.override is None
    assert state.start_attempts == 0


def test_detection_time_only_moves_forward(store: ServingStore) -> None:
    # Given a detection recorded at t=200
    store.record_detection("digits", 200.0)
    # When a delayed, older batch reports t=100
    store.record_detection("digits", 100.0)
    # Then the later time stays
    assert store.load("digits").last_detection_at == 200.0


def test_deferral_returns_the_previous_marker(store: ServingStore) -> None:
    assert store.record_deferral("digits", 10.0) is None
    assert store.record_deferral("digits", 70.0) == 10.0
    assert store.load("digits").deferred_at == 70.0


def test_override_set_and_cleared(store: ServingStore) -> None:
    store.set_override("digits", Desired.STOPPED, 500.0)
    override = store.load("digits").override
    assert override is not None
    assert (override.state, override.until) == (Desired.STOPPED, 500.0)
    store.clear_override("digits")
    assert store.load("digits").override is None


def test_transition_lock_is_exclusive_until_released_or_expired(store: ServingStore) -> None:
    # Given one controller pass holds the lock
    assert store.acquire_transition("digits", "START", now=100, expires_at=200, attempts=1)
    # When a second pass tries before expiry, it is refused
    assert not store.acquire_transition("digits", "STOP", now=150, expires_at=250, attempts=0)
    # Then after expiry (an execution that died) it can be taken again
    assert store.acquire_transition("digits", "STOP", now=201, expires_at=300, attempts=0)
    store.release_transition("digits")
    state = store.load("digits")
    assert state.transition is None
    assert store.acquire_transition("digits", "START", now=202, expires_at=400, attempts=2)
    assert store.load("digits").start_attempts == 2


def test_record_status_resets_attempts(store: ServingStore) -> None:
    store.acquire_transition("digits", "START", now=1, expires_at=2, attempts=3)
    store.record_status("digits", "RUNNING", reset_attempts=True)
    assert store.load("digits").start_attempts == 0


def test_idle_history_round_trips_and_concurrent_writes_keep_the_first(store: ServingStore) -> None:
    # Given a pass saves a history learned from an empty item
    history = IdleHistory(
        gaps=(900.0, 61.5), start_seconds=(600.0,), stop_seconds=(60.0,), demand_at=1000.0, quiet=True
    )
    assert store.save_history("digits", history, previous_revision=0)
    loaded = store.load("digits").idle
    assert (loaded.gaps, loaded.start_seconds, loaded.stop_seconds) == ((900.0, 61.5), (600.0,), (60.0,))
    assert (loaded.demand_at, loaded.quiet, loaded.revision) == (1000.0, True, 1)
    # When a second pass that read the same revision saves, it is refused
    assert not store.save_history("digits", IdleHistory(gaps=(5.0,)), previous_revision=0)
    # Then the first history stays
    assert store.load("digits").idle.gaps == (900.0, 61.5)


def test_finished_transition_is_read_after_the_lock_is_released(
    store: ServingStore, state_table: Any
) -> None:
    # Given the controller requested a start at t=1,795,428,000 (2026-11-23T10:00:00Z)
    assert store.acquire_transition(
        "digits", "START", now=1_795_428_000, expires_at=1_795_431_900, attempts=1
    )
    assert store.load("digits").finished is None  # still in progress
    # When the state machine records RUNNING ten minutes later and releases the lock
    state_table.update_item(
        TableName=STATE_TABLE,
        Key=serving_key("digits"),
        UpdateExpression=(
            "SET model_status = :s, status_changed_at = :t REMOVE transition, transition_expires_at"
        ),
        ExpressionAttributeValues={":s": {"S": "RUNNING"}, ":t": {"S": "2026-11-23T10:10:00.250Z"}},
    )
    # Then the finished transition carries both ends
    assert store.load("digits").finished == FinishedTransition(
        "START", 1_795_428_000.0, 1_795_428_600.25, "RUNNING"
    )


def test_running_since_is_the_state_machines_record_of_running(store: ServingStore, state_table: Any) -> None:
    # Given the model control state machine recorded RUNNING at its EnteredTime
    state_table.update_item(
        TableName=STATE_TABLE,
        Key=serving_key("digits"),
        UpdateExpression="SET model_status = :s, status_changed_at = :t",
        ExpressionAttributeValues={":s": {"S": "RUNNING"}, ":t": {"S": "2026-01-01T00:00:10.5Z"}},
    )
    # Then the controller reads that time as when the model became RUNNING
    assert store.load("digits").running_since == 1767225610.5
    # And a later STOPPED record leaves no running time
    state_table.update_item(
        TableName=STATE_TABLE,
        Key=serving_key("digits"),
        UpdateExpression="SET model_status = :s, status_changed_at = :t",
        ExpressionAttributeValues={":s": {"S": "STOPPED"}, ":t": {"S": "2026-01-01T00:05:00Z"}},
    )
    assert store.load("digits").running_since is None
