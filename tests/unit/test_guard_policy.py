"""The account guard's pure decisions: what is managed, what is reported and stopped, budgets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lambdas.common.settings import GuardSettings, ProjectSettings, ServingWindow
from lambdas.guard.policy import (
    REPORT_EVERY_SECONDS,
    Action,
    GuardMemory,
    ProjectView,
    RunningVersion,
    Seen,
    Usage,
    sweep,
)
from lambdas.serving.policy import Desired, Override, ServingState

# Monday 2026-11-23 10:00 UTC
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()
ARN = "arn:aws:rekognition:us-east-1:123456789012:project"


def version(project: str, name: str, units: int = 1, status: str = "RUNNING") -> RunningVersion:
    return RunningVersion(
        project=project,
        project_arn=f"{ARN}/{project}/1",
        feature="CUSTOM_LABELS",
        version_arn=f"{ARN}/{project}/version/{name}/1",
        version_name=name,
        status=status,
        min_units=units,
    )


def view(production: RunningVersion | None, **kwargs: object) -> ProjectView:
    settings = kwargs.pop("settings", ProjectSettings())
    return ProjectView(
        settings=settings,  # type: ignore[arg-type]
        production_version_arn=production.version_arn if production else None,
        **kwargs,  # type: ignore[arg-type]
    )


def run(running, views, memory=None, guard=None, now=NOW):  # type: ignore[no-untyped-def]
    return sweep(
        running,
        views,
        memory or GuardMemory(),
        guard or GuardSettings(),
        now=now,
        controller_rate_minutes=1,
    )


def test_a_version_of_an_unconfigured_project_is_reported_not_stopped_by_default() -> None:
    stray = version("stray", "v1", units=2)
    result = run([stray], {})
    (finding,) = result.unmanaged
    assert finding.action is Action.REPORT and finding.report
    assert finding.reason == "project stray is not configured in this stack"
    assert finding.detail()["inference_units"] == 2
    assert result.stops == []


def test_an_allowed_project_is_stopped_once_it_ran_unmanaged_long_enough() -> None:
    stray = version("stray", "v1")
    guard = GuardSettings(stop_unmanaged_after_minutes=30, stop_allowed_projects=("stray",))
    first = run([stray], {}, guard=guard)
    assert first.unmanaged[0].action is Action.REPORT  # seen just now: 0 min
    later = run([stray], {}, first.memory, guard, now=NOW + 31 * 60)
    (finding,) = later.unmanaged
    assert finding.action is Action.STOP and finding.running_minutes == pytest.approx(31)
    assert [v.version_arn for v, _ in later.stops] == [stray.version_arn]


def test_a_project_not_on_the_allow_list_is_never_stopped() -> None:
    stray = version("other", "v1")
    guard = GuardSettings(stop_unmanaged_after_minutes=0, stop_allowed_projects=("stray",))
    assert run([stray], {}, guard=guard).stops == []


def test_an_old_version_of_a_configured_project_is_unmanaged() -> None:
    production, old = version("digits", "v2"), version("digits", "v1")
    serving = ServingState(override=Override(Desired.RUNNING, NOW + 3600))
    result = run([production, old], {"digits": view(production, serving=serving)})
    managed = {f.version.version_name: f.managed for f in result.findings}
    assert managed == {"v1": False, "v2": True}
    assert "not the production version" in result.unmanaged[0].reason


def test_production_running_while_the_policy_wants_it_stopped_is_unmanaged_after_a_tick() -> None:
    production = version("digits", "v1")
    # last detection 20 min ago, idle timeout 15 min: stopped is wanted now and two ticks ago
    idle = ServingState(last_detection_at=NOW - 20 * 60)
    (finding,) = run([production], {"digits": view(production, serving=idle)}).findings
    assert not finding.managed and "wants it stopped" in finding.reason
    # idle for 15.5 min: the controller may not have ticked yet, so it still counts as managed
    just_idle = ServingState(last_detection_at=NOW - 15.5 * 60)
    assert run([production], {"digits": view(production, serving=just_idle)}).findings[0].managed


def test_production_inside_a_serving_window_or_in_transition_is_managed() -> None:
    production = version("digits", "v1")
    window = ProjectSettings(serving_windows=(ServingWindow(cron="0 9 ? * MON-FRI *", minutes=120),))
    assert run([production], {"digits": view(production, settings=window)}).findings[0].managed
    stopping = ServingState(transition="STOP", transition_expires_at=NOW + 600)
    assert run([production], {"digits": view(production, serving=stopping)}).findings[0].managed


def test_the_version_of_the_training_in_flight_is_managed() -> None:
    production, candidate = version("digits", "v1"), version("digits", "v2", status="STARTING")
    serving = ServingState(override=Override(Desired.RUNNING, NOW + 3600))
    result = run(
        [production, candidate], {"digits": view(production, serving=serving, training_version_name="v2")}
    )
    assert result.unmanaged == []


def test_unmanaged_versions_are_reported_again_only_after_an_hour() -> None:
    stray = version("stray", "v1")
    first = run([stray], {})
    again = run([stray], {}, first.memory, now=NOW + 15 * 60)
    assert not again.unmanaged[0].report
    hour = run([stray], {}, again.memory, now=NOW + REPORT_EVERY_SECONDS)
    assert hour.unmanaged[0].report
    assert hour.unmanaged[0].running_minutes == pytest.approx(60)


def test_usage_accrues_between_sweeps_and_a_budget_overrun_stops_every_running_version() -> None:
    production = version("digits", "v1", units=2)
    serving = ServingState(override=Override(Desired.RUNNING, NOW + 86400))
    views = {"digits": view(production, serving=serving, settings=ProjectSettings(max_iu_hours_per_day=1.0))}
    first = run([production], views)
    assert first.memory.usage == {} and first.breaches == []
    # 15 minutes at 2 units: 0.5 IU-hours
    second = run([production], views, first.memory, now=NOW + 15 * 60)
    assert second.memory.usage["digits"].iu_hours == pytest.approx(0.5)
    assert second.breaches == []
    third = run([production], views, second.memory, now=NOW + 30 * 60)
    (breach,) = third.breaches
    assert breach.used_iu_hours == pytest.approx(1.0) and breach.limit_iu_hours == 1.0
    assert breach.stop_until == datetime(2026, 11, 24, tzinfo=UTC).timestamp()
    ((stopped, reason),) = third.stops
    assert stopped == production and "max_iu_hours_per_day 1 exceeded" in reason


def test_a_gap_longer_than_two_sweeps_counts_two_sweeps_and_usage_resets_each_utc_day() -> None:
    production = version("digits", "v1")
    memory = GuardMemory(
        seen={production.version_arn: Seen(NOW - 5 * 3600, NOW - 3 * 3600, 1)},
        usage={"digits": Usage("2026-11-22", 7.0)},
    )
    result = run([production], {}, memory)
    # yesterday's 7 IU-hours are gone; at most 2 x 15 minutes are counted for the gap
    assert result.memory.usage["digits"] == Usage("2026-11-23", 0.5)


def test_versions_no_longer_running_are_forgotten() -> None:
    stray = version("stray", "v1")
    first = run([stray], {})
    assert run([], {}, first.memory, now=NOW + 900).memory.seen == {}


def test_memory_round_trips_through_its_json_form() -> None:
    memory = GuardMemory(seen={"arn": Seen(1.0, 2.0, 3, 2.0)}, usage={"p": Usage("2026-11-23", 1.5)})
    assert GuardMemory.from_dict(memory.to_dict()) == memory


# --- settings ------------------------------------------------------------------------------------
def test_guard_settings_come_from_the_context_with_documented_defaults() -> None:
    from lambdas.common.settings import settings_from_context

    default = settings_from_context({"projects": {"digits": {}}})
    assert default.guard == GuardSettings(rate_minutes=15, stop_unmanaged_after_minutes=None)
    assert default.project("digits").max_iu_hours_per_day is None
    configured = settings_from_context(
        {
            "projects": {"digits": {"max_iu_hours_per_day": 4, "label_f1_floors": {"cat": 0.9}}},
            "guard": {
                "rate_minutes": 5,
                "stop_unmanaged_after_minutes": 60,
                "stop_allowed_projects": ["sandbox"],
            },
        }
    )
    assert configured.guard.stop_allowed_projects == ("sandbox",)
    assert configured.project("digits").label_f1_floors == {"cat": 0.9}


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"guard": {"stop_allowed_projects": ["bad name"]}}, "guard.stop_allowed_projects"),
        ({"guard": {"rate_minutes": 0}}, "rate_minutes"),
        ({"projects": {"digits": {"label_f1_floors": {"cat": 1.5}}}}, "label_f1_floors"),
        ({"projects": {"digits": {"max_iu_hours_per_day": 0}}}, "max_iu_hours_per_day"),
        ({"projects": {"digits": {"max_label_f1_drop": 2}}}, "max_label_f1_drop"),
    ],
)
def test_bad_guard_and_gate_settings_are_named(context: dict[str, object], message: str) -> None:
    from pydantic import ValidationError

    from lambdas.common.settings import settings_from_context

    with pytest.raises(ValidationError, match=message):
        settings_from_context({"projects": {"digits": {}}, **context})
