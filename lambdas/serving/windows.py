"""Serving windows: six-field EventBridge cron expressions evaluated in UTC.

A window opens at every time its cron matches and stays open for `minutes`. Supported syntax per
field: `*`, `?` (day-of-month / day-of-week), numbers, names (JAN-DEC, SUN-SAT), ranges `a-b`,
steps `*/n`, `a/n`, `a-b/n`, and comma lists. Day-of-week counts 1 = SUN .. 7 = SAT, as in
EventBridge. `L`, `W` and `#` are rejected with a message rather than silently misread.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from lambdas.common.settings import ServingWindow

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTHS = {name: i + 1 for i, name in enumerate(_MONTH_NAMES)}
_DAYS = {name: i + 1 for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}


class CronError(ValueError):
    pass


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression: the allowed values of each field (None = any)."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset[int] | None
    months: frozenset[int] | None
    days_of_week: frozenset[int] | None  # 1 = Sunday .. 7 = Saturday
    years: frozenset[int] | None

    def matches_day(self, day: date) -> bool:
        if self.years is not None and day.year not in self.years:
            return False
        if self.months is not None and day.month not in self.months:
            return False
        if self.days_of_month is not None and day.day not in self.days_of_month:
            return False
        # Python: Monday = 0 .. Sunday = 6; EventBridge: Sunday = 1 .. Saturday = 7.
        return self.days_of_week is None or (day.weekday() + 1) % 7 + 1 in self.days_of_week

    def latest_start(self, now: datetime, horizon: timedelta) -> datetime | None:
        """The latest matching minute at or before `now`, looking back at most `horizon`."""
        earliest = now - horizon
        day = now.date()
        while day >= earliest.date():
            if self.matches_day(day):
                for hour in reversed(self.hours):
                    for minute in reversed(self.minutes):
                        start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if start <= now:
                            return start if start >= earliest else None
            day -= timedelta(days=1)
        return None


@functools.lru_cache(maxsize=256)
def parse_cron(expression: str) -> Cron:
    text = expression.strip()
    if text.startswith("cron(") and text.endswith(")"):
        text = text[5:-1]
    fields = text.split()
    if len(fields) != 6:
        raise CronError(
            f"serving window cron {expression!r} must have 6 fields "
            "(minutes hours day-of-month month day-of-week year), e.g. '0 8 ? * MON-FRI *'"
        )
    minute, hour, dom, month, dow, year = fields
    if dom != "?" and dow != "?" and not (dom == "*" and dow == "*"):
        raise CronError(f"serving window cron {expression!r}: use '?' in day-of-month or day-of-week")
    return Cron(
        expression=expression,
        minutes=tuple(sorted(_field(minute, 0, 59, {}, expression, "minutes"))),
        hours=tuple(sorted(_field(hour, 0, 23, {}, expression, "hours"))),
        days_of_month=_optional(dom, 1, 31, {}, expression, "day-of-month"),
        months=_optional(month, 1, 12, _MONTHS, expression, "month"),
        days_of_week=_optional(dow, 1, 7, _DAYS, expression, "day-of-week"),
        years=_optional(year, 1970, 2199, {}, expression, "year"),
    )


def _optional(
    text: str, low: int, high: int, names: dict[str, int], expression: str, label: str
) -> frozenset[int] | None:
    if text in ("*", "?"):
        return None
    return frozenset(_field(text, low, high, names, expression, label))


def _field(text: str, low: int, high: int, names: dict[str, int], expression: str, label: str) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        values.update(_part(part, low, high, names, expression, label))
    return values


def _part(
    text: str, low: int, high: int, names: dict[str, int], expression: str, label: str
) -> Iterable[int]:
    def fail(why: str) -> CronError:
        return CronError(f"serving window cron {expression!r}, {label} field {text!r}: {why}")

    def value(token: str) -> int:
        token = token.upper()
        if token in names:
            return names[token]
        if "#" in token or (token[-1:] in ("L", "W") and token[:-1].isdigit()) or token in ("L", "LW"):
            raise fail("L, W and # are not supported; list the days explicitly")
        if not token.isdigit():
            raise fail(f"{token!r} is not a number" + (f" or one of {', '.join(names)}" if names else ""))
        number = int(token)
        if not low <= number <= high:
            raise fail(f"{number} is outside {low}-{high}")
        return number

    base, _, step_text = text.partition("/")
    step = 1
    if step_text:
        if not step_text.isdigit() or int(step_text) < 1:
            raise fail("step must be a positive number")
        step = int(step_text)
    if base in ("*", "?"):
        start, end = low, high
    elif "-" in base:
        first, _, last = base.partition("-")
        start, end = value(first), value(last)
        if start > end:
            raise fail("range start is after its end")
    else:
        start = value(base)
        end = high if step_text else start
    return range(start, end + 1, step)


def in_window(windows: Iterable[ServingWindow], now: datetime) -> bool:
    """True while `now` is inside any window (opened at a cron match, lasting its minutes)."""
    for window in windows:
        cron = parse_cron(window.cron)
        start = cron.latest_start(now, timedelta(minutes=window.minutes))
        if start is not None and now < start + timedelta(minutes=window.minutes):
            return True
    return False


def validate_windows(windows: Iterable[ServingWindow]) -> None:
    """Raises CronError naming the first invalid expression (used at synth time)."""
    for window in windows:
        parse_cron(window.cron)
