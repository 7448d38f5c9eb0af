"""The SERVING item: monotonic markers, overrides and the conditional transition lock (moto DynamoDB)."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.serving.policy import Desired
from lambdas.serving.state import ServingStore
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
