"""One controller pass with fakes: what it starts, stops, publishes and refuses."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from lambdas.common.settings import ProjectSettings, ServingWindow
from lambdas.serving.control import ControllerDeps, control_project, execution_name, transition_input
from lambdas.serving.gateways import ServingTarget
from lambdas.serving.idle import IdleHistory
from lambdas.serving.policy import Desired, Override, ServingState

NOW = 1_795_428_000.0  # Monday 10:00 UTC
TARGET = ServingTarget(
    project="digits",
    project_arn="arn:aws:rekognition:us-east-1:123456789012:project/digits/1",
    version_arn="arn:aws:rekognition:us-east-1:123456789012:project/digits/version/v1/2",
    version_name="v1",
)


@dataclass
class FakeStore:
    state: ServingState = field(default_factory=ServingState)
    lock_free: bool = True
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def load(self, project: str) -> ServingState:
        return self.state

    def acquire_transition(
        self, project: str, transition: str, now: float, expires_at: float, attempts: int
    ) -> bool:
        self.calls.append(("acquire", (transition, attempts)))
        return self.lock_free

    def attach_execution(self, project: str, execution_arn: str) -> None:
        self.calls.append(("attach", execution_arn))

    def release_transition(self, project: str) -> None:
        self.calls.append(("release", project))

    def record_status(self, project: str, status: str, reset_attempts: bool) -> None:
        self.calls.append(("status", (status, reset_attempts)))

    def save_history(self, project: str, history: IdleHistory, previous_revision: int) -> bool:
        self.state = replace(self.state, idle=replace(history, revision=previous_revision + 1))
        return True


@dataclass
class FakeModels:
    status_value: str | None = "STOPPED"

    def status(self, target: ServingTarget) -> str | None:
        return self.status_value


@dataclass
class FakeQueue:
    depth: int = 0

    def backlog(self) -> int:
        return self.depth


@dataclass
class FakeStarter:
    fail: bool = False
    started: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def start(self, name: str, payload: dict[str, Any]) -> str:
        if self.fail:
            raise RuntimeError("StartExecution refused")
        self.started.append((name, payload))
        return f"arn:aws:states:us-east-1:123456789012:execution:model-control:{name}"


@dataclass
class FakePublisher:
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def publish(self, event_type: str, project: str, **detail: Any) -> dict[str, Any]:
        self.events.append((event_type, project, detail))
        return {}


def deps(
    store: FakeStore, status: str | None = "STOPPED", depth: int = 0, starter: FakeStarter | None = None
) -> ControllerDeps:
    return ControllerDeps(
        store=store,  # type: ignore[arg-type]
        models=FakeModels(status),  # type: ignore[arg-type]
        queue=FakeQueue(depth),  # type: ignore[arg-type]
        starter=starter or FakeStarter(),  # type: ignore[arg-type]
        publisher=FakePublisher(),  # type: ignore[arg-type]
        target=lambda project: TARGET if status is not None else None,
    )


SETTINGS = ProjectSettings(
    idle_minutes=15, min_inference_units=2, max_inference_units=4, model_poll_seconds=30
)


def test_waiting_work_starts_the_model_through_the_state_machine() -> None:
    # Given images were deferred and the queue holds them
    store = FakeStore(ServingState(deferred_at=NOW - 30, start_attempts=0))
    wiring = deps(store, "STOPPED", depth=12)
    # When the controller runs
    outcome = control_project("digits", SETTINGS, now=NOW, deps=wiring, controller_rate_minutes=1)
    # Then it took the lock, started one execution with the configured units and announced it
    assert outcome.action == "START"
    assert ("acquire", ("START", 1)) in store.calls
    [(name, payload)] = wiring.starter.started  # type: ignore[attr-defined]
    assert name.startswith("digits-start-")
    assert payload["min_inference_units"] == 2
    assert payload["max_inference_units"] == 4
    assert payload["poll_seconds"] == 30
    assert payload["max_polls"] == 120
    [(event_type, project, detail)] = wiring.publisher.events  # type: ignore[attr-defined]
    assert (event_type, project) == ("model.starting", "digits")
    assert detail["attempt"] == 1


def test_lock_held_elsewhere_means_no_double_start() -> None:
    store = FakeStore(ServingState(deferred_at=NOW - 30), lock_free=False)
    wiring = deps(store, "STOPPED", depth=1)
    outcome = control_project("digits", SETTINGS, now=NOW, deps=wiring, controller_rate_minutes=1)
    assert outcome.action == "NONE"
    assert wiring.starter.started == []  # type: ignore[attr-defined]
    assert wiring.publisher.events == []  # type: ignore[attr-defined]


def test_failed_start_execution_releases_the_lock() -> None:
    store = FakeStore(ServingState(override=Override(Desired.RUNNING, NOW + 60)))
    wiring = deps(store, "STOPPED", starter=FakeStarter(fail=True))
    with pytest.raises(RuntimeError):
        control_project("digits", SETTINGS, now=NOW, deps=wiring, controller_rate_minutes=1)
    assert ("release", "digits") in store.calls


def test_idle_model_is_stopped_and_running_minutes_are_counted() -> None:
    store = FakeStore(ServingState(last_detection_at=NOW - 15 * 60))
    wiring = deps(store, "RUNNING")
    outcome = control_project(
        "digits", SETTINGS, now=NOW, deps=wiring, controller_rate_minutes=1, scheduled_tick=True
    )
    assert outcome.action == "STOP"
    assert outcome.running_minutes == 1.0
    assert outcome.unwanted_minutes == 1.0  # running while nothing wanted it
    assert wiring.publisher.events[0][0] == "model.stopping"  # type: ignore[attr-defined]


def test_window_keeps_running_without_unwanted_minutes() -> None:
    settings = SETTINGS.model_copy(
        update={"serving_windows": (ServingWindow(cron="0 8 ? * MON-FRI *", minutes=600),)}
    )
    wiring = deps(FakeStore(), "RUNNING")
    outcome = control_project(
        "digits", settings, now=NOW, deps=wiring, controller_rate_minutes=5, scheduled_tick=True
    )
    assert outcome.action == "NONE"
    assert (outcome.running_minutes, outcome.unwanted_minutes) == (5.0, 0.0)


def test_moderation_projects_are_not_served() -> None:
    settings = ProjectSettings(feature="CONTENT_MODERATION")
    wiring = deps(FakeStore(ServingState(deferred_at=NOW)), "STOPPED", depth=3)
    outcome = control_project("moderation", settings, now=NOW, deps=wiring, controller_rate_minutes=1)
    assert outcome.action == "NONE"
    assert "adapters" in outcome.reason


def test_transition_input_without_auto_scaling_and_execution_names() -> None:
    payload = transition_input(TARGET, "STOP", ProjectSettings(model_poll_seconds=60), attempt=0)
    assert payload["max_inference_units"] is None
    assert payload["action"] == "STOP"
    name = execution_name("my.project", "START", NOW)
    assert name.startswith("my-project-start-1795428000-")
    assert len(name) <= 80


def test_stop_event_names_the_adaptive_threshold_and_why() -> None:
    # Given a history of two-hour idle gaps and a measured 600 s start and 60 s stop
    history = IdleHistory(gaps=(7200.0,) * 10, start_seconds=(600.0,), stop_seconds=(60.0,))
    store = FakeStore(ServingState(last_detection_at=NOW - 90, idle=history))
    wiring = deps(store, "RUNNING")
    # When the controller runs 90 s after the last detection (idle_minutes is 15)
    outcome = control_project("digits", SETTINGS, now=NOW, deps=wiring, controller_rate_minutes=1)
    # Then it stops the model, and the stop event says which threshold applied and why
    assert outcome.action == "STOP"
    [(event_type, _, detail)] = wiring.publisher.events  # type: ignore[attr-defined]
    assert event_type == "model.stopping"
    assert detail["idle_threshold_seconds"] == 60.0
    assert detail["idle_threshold"].startswith("adaptive")


def test_short_history_keeps_idle_minutes_and_the_stop_event_says_so() -> None:
    store = FakeStore(ServingState(last_detection_at=NOW - 90))
    assert (
        control_project(
            "digits", SETTINGS, now=NOW, deps=deps(store, "RUNNING"), controller_rate_minutes=1
        ).action
        == "NONE"
    )
    store = FakeStore(ServingState(last_detection_at=NOW - 15 * 60))
    wiring = deps(store, "RUNNING")
    control_project("digits", SETTINGS, now=NOW, deps=wiring, controller_rate_minutes=1)
    [(_, _, detail)] = wiring.publisher.events  # type: ignore[attr-defined]
    assert detail["idle_threshold_seconds"] == 900.0
    assert "history too short" in detail["idle_threshold"]


def test_a_pass_feeds_its_observations_into_the_idle_history() -> None:
    # Given the last demand was seen at NOW - 3600 and a later pass saw quiet
    store = FakeStore(ServingState(deferred_at=NOW - 5, idle=IdleHistory(demand_at=NOW - 3600, quiet=True)))
    control_project(
        "digits", SETTINGS, now=NOW, deps=deps(store, "STOPPED", depth=4), controller_rate_minutes=1
    )
    # Then the deferral closed a gap of 3595 s, and the history was saved
    assert store.state.idle.gaps == (3595.0,)
    assert store.state.idle.revision == 1
