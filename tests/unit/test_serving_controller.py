"""Controller handler edges: request parsing and overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from lambdas.serving.policy import Desired
from lambdas.serving.requests import ControlRequest, apply_override, parse_request


@dataclass
class RecordingStore:
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def set_override(self, project: str, state: Desired, until: float) -> None:
        self.calls.append(("set", (state, until)))

    def clear_override(self, project: str) -> None:
        self.calls.append(("clear", project))


def test_eventbridge_event_and_schedule_payload_are_parsed() -> None:
    event = {
        "detail-type": "Autopilot Model Control Requested",
        "source": "custom-labels-autopilot",
        "detail": {"project": "digits", "action": "start", "override_minutes": 90},
    }
    assert parse_request(event) == ControlRequest(project="digits", action="start", override_minutes=90)
    assert parse_request({"project": "digits", "trigger": "schedule"}).trigger == "schedule"
    assert parse_request({}).project is None


def test_invalid_request_names_the_input_and_the_expected_shape() -> None:
    with pytest.raises(ValueError, match="'action': 'restart'") as raised:
        parse_request({"project": "digits", "action": "restart"})
    assert "override_minutes" in str(raised.value)


def test_start_and_stop_set_overrides_with_default_duration() -> None:
    store = RecordingStore()
    apply_override(
        store, "digits", ControlRequest(project="digits", action="start", override_minutes=30), 1000.0
    )  # type: ignore[arg-type]
    apply_override(store, "digits", ControlRequest(project="digits", action="stop"), 1000.0)  # type: ignore[arg-type]
    assert store.calls == [
        ("set", (Desired.RUNNING, 1000.0 + 1800)),
        ("set", (Desired.STOPPED, 1000.0 + 3600)),
    ]


def test_auto_clears_only_when_a_person_asks() -> None:
    store = RecordingStore()
    apply_override(store, "digits", ControlRequest(project="digits", action="auto", trigger="schedule"), 1.0)  # type: ignore[arg-type]
    apply_override(store, "digits", ControlRequest(project="digits", action="auto", trigger="detection"), 1.0)  # type: ignore[arg-type]
    assert store.calls == []
    apply_override(store, "digits", ControlRequest(project="digits", action="auto"), 1.0)  # type: ignore[arg-type]
    assert store.calls == [("clear", "digits")]
