"""Inference-unit hours from the usage ledger: pure arithmetic, no AWS.

The model control state machine writes one ledger item per recorded status (USAGE#<time>#<status>
under the project's partition, see infra/constructs/serving.py): RUNNING when a start reached
RUNNING (with the units it was started with), STOPPED when a stop reached STOPPED. A model is
billed for the hours it runs times its inference units ("Running a trained Amazon Rekognition
Custom Labels model", Inference units); the ledger turns into RUNNING intervals, clipped to the
period asked for.

Units are the MinInferenceUnits of the start: with auto-scaling (MaxInferenceUnits) the service
may run more units for a while, which only the CloudWatch metric InServiceInferenceUnits shows
("Reporting running duration and inference units used").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

RUNNING = "RUNNING"
STOPPED = "STOPPED"
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class LedgerEntry:
    status: str  # RUNNING | STOPPED
    at: float  # epoch seconds
    version: str
    units: int
    reason: str = ""  # why the controller asked for the start or stop


@dataclass(frozen=True)
class Interval:
    start: float
    end: float
    version: str
    units: int
    open: bool = False  # still running at `end` (the time of the report)

    @property
    def iu_hours(self) -> float:
        return (self.end - self.start) / SECONDS_PER_HOUR * self.units


def parse_time(text: str) -> float:
    """ISO-8601 as Step Functions writes `$$.State.EnteredTime` (Z suffix) -> epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def intervals(entries: Iterable[LedgerEntry], now: float) -> list[Interval]:
    """RUNNING intervals from ledger entries (any order). A RUNNING without a later STOPPED is open
    until `now`; a repeated RUNNING (a start recorded twice) keeps the first start."""
    result: list[Interval] = []
    current: LedgerEntry | None = None
    for entry in sorted(entries, key=lambda e: e.at):
        if entry.status == RUNNING:
            if current is None:
                current = entry
            elif entry.version != current.version:  # another version took over without a STOPPED
                result.append(Interval(current.at, entry.at, current.version, current.units))
                current = entry
        elif entry.status == STOPPED and current is not None:
            result.append(Interval(current.at, entry.at, current.version, current.units))
            current = None
    if current is not None:
        result.append(Interval(current.at, max(now, current.at), current.version, current.units, open=True))
    return result


def clip(items: Iterable[Interval], since: float, until: float) -> list[Interval]:
    """The parts of `items` inside [since, until]."""
    clipped = []
    for item in items:
        start, end = max(item.start, since), min(item.end, until)
        if end > start:
            clipped.append(Interval(start, end, item.version, item.units, item.open))
    return clipped


def iu_hours(items: Iterable[Interval]) -> float:
    return sum(item.iu_hours for item in items)


def per_day(items: Iterable[Interval]) -> dict[str, float]:
    """IU-hours per UTC day (YYYY-MM-DD), an interval split at midnight."""
    days: dict[str, float] = {}
    for item in items:
        start = item.start
        while start < item.end:
            day = datetime.fromtimestamp(start, UTC).date()
            midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
            end = min(item.end, midnight.timestamp())
            days[day.isoformat()] = (
                days.get(day.isoformat(), 0.0) + (end - start) / SECONDS_PER_HOUR * item.units
            )
            start = end
    return dict(sorted(days.items()))


def bar_chart(values: dict[str, float], width: int = 40) -> list[str]:
    """A terminal bar chart, one row per key, bars scaled to the largest value."""
    if not values:
        return []
    peak = max(values.values()) or 1.0
    return [
        f"{key}  {'#' * max(1 if value > 0 else 0, round(value / peak * width)):<{width}}  {value:8.2f}"
        for key, value in values.items()
    ]
