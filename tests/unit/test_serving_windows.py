"""Serving windows: six-field EventBridge cron, UTC, open for `minutes` after each match."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lambdas.common.settings import ServingWindow
from lambdas.serving.windows import CronError, in_window, parse_cron

BUSINESS_HOURS = ServingWindow(cron="0 8 ? * MON-FRI *", minutes=600)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-11-23T07:59", False),  # Monday before opening
        ("2026-11-23T08:00", True),  # opens at the match
        ("2026-11-23T17:59", True),
        ("2026-11-23T18:00", False),  # closes after 600 minutes
        ("2026-11-21T09:00", False),  # Saturday
        ("2026-11-22T12:00", False),  # Sunday
        ("2026-11-27T12:00", True),  # Friday
    ],
)
def test_business_hours_window(moment: str, expected: bool) -> None:
    # Given a Monday-to-Friday 08:00 window of ten hours
    # When / Then the clock is inside it exactly during those hours
    assert in_window([BUSINESS_HOURS], at(moment)) is expected


def test_window_spanning_midnight_and_weekend_day_numbers() -> None:
    # Given a window opening Saturdays (day 7) at 22:00 for four hours
    window = ServingWindow(cron="0 22 ? * 7 *", minutes=240)
    # Then it is still open early on Sunday and closed afterwards
    assert in_window([window], at("2026-11-22T01:30"))
    assert not in_window([window], at("2026-11-22T02:00"))
    assert not in_window([window], at("2026-11-21T21:59"))


def test_steps_ranges_lists_and_names() -> None:
    cron = parse_cron("cron(*/15 9-11,14 1,15 JAN-MAR ? 2027)")
    assert cron.minutes == (0, 15, 30, 45)
    assert cron.hours == (9, 10, 11, 14)
    assert cron.days_of_month == frozenset({1, 15})
    assert cron.months == frozenset({1, 2, 3})
    assert cron.years == frozenset({2027})


def test_no_window_configured_is_never_open() -> None:
    assert not in_window([], at("2026-11-23T12:00"))


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 8 * *", "must have 6 fields"),
        ("0 25 ? * * *", "25 is outside 0-23"),
        ("0 8 L * ? *", "L, W and # are not supported"),
        ("0 8 ? * 2#1 *", "L, W and # are not supported"),
        ("0 8 ? * FUNDAY *", "is not a number"),
        ("0 8 5 * 2 *", "use '?'"),
        ("0 10-8 ? * * *", "range start is after its end"),
    ],
)
def test_invalid_expressions_name_the_problem(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message) as raised:
        parse_cron(expression)
    assert expression in str(raised.value)
