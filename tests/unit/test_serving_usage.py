"""IU-hours from the usage ledger: the billing arithmetic of `autopilot cost`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lambdas.serving.usage import LedgerEntry, bar_chart, clip, intervals, iu_hours, parse_time, per_day


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def entry(status: str, when: str, units: int = 1, version: str = "v1") -> LedgerEntry:
    return LedgerEntry(status=status, at=at(when), version=version, units=units)


def test_two_units_for_ninety_minutes_are_three_iu_hours() -> None:
    # Given a start recorded RUNNING at 10:00 with 2 units and STOPPED at 11:30 (listed out of order)
    ledger = [entry("STOPPED", "2026-11-02T11:30:00"), entry("RUNNING", "2026-11-02T10:00:00", units=2)]
    # Then 1.5 h x 2 units
    assert iu_hours(intervals(ledger, now=at("2026-11-03T00:00:00"))) == pytest.approx(3.0)


def test_a_model_still_running_counts_until_now_and_says_so() -> None:
    ledger = [entry("RUNNING", "2026-11-02T10:00:00")]
    (interval,) = intervals(ledger, now=at("2026-11-02T10:15:00"))
    assert interval.open and interval.iu_hours == pytest.approx(0.25)


def test_a_repeated_running_record_keeps_the_first_start_and_a_stray_stop_counts_nothing() -> None:
    ledger = [
        entry("STOPPED", "2026-11-02T09:00:00"),  # a stop whose start is older than the ledger
        entry("RUNNING", "2026-11-02T10:00:00"),
        entry("RUNNING", "2026-11-02T10:30:00"),  # recorded twice (a second start found it RUNNING)
        entry("STOPPED", "2026-11-02T11:00:00"),
    ]
    assert iu_hours(intervals(ledger, now=at("2026-11-03T00:00:00"))) == pytest.approx(1.0)


def test_another_version_taking_over_closes_the_first_interval() -> None:
    ledger = [
        entry("RUNNING", "2026-11-02T10:00:00", version="v1"),
        entry("RUNNING", "2026-11-02T11:00:00", version="v2", units=3),
        entry("STOPPED", "2026-11-02T12:00:00", version="v2"),
    ]
    found = intervals(ledger, now=at("2026-11-03T00:00:00"))
    assert [(i.version, i.iu_hours) for i in found] == [("v1", 1.0), ("v2", 3.0)]


def test_the_period_clips_intervals_and_days_split_at_midnight_utc() -> None:
    ledger = [
        entry("RUNNING", "2026-11-01T22:00:00", units=2),
        entry("STOPPED", "2026-11-02T03:00:00", units=2),
    ]
    found = intervals(ledger, now=at("2026-11-05T00:00:00"))
    # Clipped to the period that starts at 23:00: 4 h x 2 units
    assert iu_hours(clip(found, since=at("2026-11-01T23:00:00"), until=at("2026-11-05T00:00:00"))) == 8.0
    # Per day: 2 h before midnight, 3 h after, 2 units each
    assert per_day(found) == {"2026-11-01": 4.0, "2026-11-02": 6.0}


def test_step_functions_times_parse_and_the_chart_scales_to_the_peak() -> None:
    assert parse_time("2026-11-02T10:00:00.123Z") == pytest.approx(at("2026-11-02T10:00:00") + 0.123)
    rows = bar_chart({"2026-11-01": 4.0, "2026-11-02": 2.0}, width=10)
    assert rows[0].count("#") == 10 and rows[1].count("#") == 5
    assert bar_chart({}) == []
