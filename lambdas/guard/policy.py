"""The account guard's decisions: pure functions of what a sweep observed, its memory and the clock.

No AWS here. The handler lists every project of the account and region (both features) and their
RUNNING / STARTING versions, gathers what the controller manages, and acts on the `SweepResult`.

A running version is *managed* when
  * it belongs to a configured project and is the training workflow's version in flight (the
    blue/green start of a new version before its promotion), or
  * it is the production version of a configured project and either a start/stop transition of
    the controller holds the lock, or the serving policy wants it running now or wanted it running
    one controller tick ago (the controller stops an idle model at its next tick);
anything else is *unmanaged*: a project outside the configuration, an old version left running,
or the production version running while the serving policy has wanted it stopped for more than a
tick (a stop that failed, was refused, or a model started by hand).

Rekognition reports no start time, so the guard measures running time from the first sweep that
saw a version running: "running for at least N minutes". Inference-unit hours accrue between two
sweeps that both saw the version running (MinInferenceUnits x elapsed time, at most two sweep
intervals per gap), per project and UTC day; the figure is a lower bound of the billed hours.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from lambdas.common.settings import GuardSettings, ProjectSettings
from lambdas.serving import policy as serving_policy
from lambdas.serving.windows import in_window

ACTIVE_STATUSES = frozenset({"RUNNING", "STARTING"})
# An unmanaged version is reported at its first sighting, then again at most this often.
REPORT_EVERY_SECONDS = 3600


class Action(StrEnum):
    REPORT = "REPORT"  # published, left running
    STOP = "STOP"  # published and stopped
    NONE = "NONE"  # managed


@dataclass(frozen=True)
class RunningVersion:
    """One RUNNING or STARTING version, as DescribeProjectVersions described it."""

    project: str
    project_arn: str
    feature: str
    version_arn: str
    version_name: str
    status: str
    min_units: int
    max_units: int | None = None


@dataclass(frozen=True)
class ProjectView:
    """What the controller and the training workflow manage in one project (absent: not configured)."""

    settings: ProjectSettings
    production_version_arn: str | None = None
    training_version_name: str | None = None  # version of the training in flight, if locked
    serving: serving_policy.ServingState = field(default_factory=serving_policy.ServingState)
    queue_backlog: int = 0


@dataclass(frozen=True)
class Seen:
    first_seen_at: float
    last_seen_at: float
    units: int
    reported_at: float | None = None


@dataclass(frozen=True)
class Usage:
    day: str  # UTC date, YYYY-MM-DD
    iu_hours: float = 0.0


@dataclass(frozen=True)
class GuardMemory:
    seen: dict[str, Seen] = field(default_factory=dict)  # version ARN -> Seen
    usage: dict[str, Usage] = field(default_factory=dict)  # project -> today's usage

    def to_dict(self) -> dict[str, Any]:
        return {
            "seen": {
                arn: {
                    "first_seen_at": s.first_seen_at,
                    "last_seen_at": s.last_seen_at,
                    "units": s.units,
                    "reported_at": s.reported_at,
                }
                for arn, s in self.seen.items()
            },
            "usage": {name: {"day": u.day, "iu_hours": u.iu_hours} for name, u in self.usage.items()},
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> GuardMemory:
        raw = raw or {}
        seen = {
            str(arn): Seen(
                first_seen_at=float(s["first_seen_at"]),
                last_seen_at=float(s["last_seen_at"]),
                units=int(s.get("units") or 1),
                reported_at=float(s["reported_at"]) if s.get("reported_at") is not None else None,
            )
            for arn, s in (raw.get("seen") or {}).items()
        }
        usage = {
            str(name): Usage(day=str(u["day"]), iu_hours=float(u.get("iu_hours") or 0))
            for name, u in (raw.get("usage") or {}).items()
        }
        return cls(seen, usage)


@dataclass(frozen=True)
class Finding:
    version: RunningVersion
    managed: bool
    reason: str
    running_minutes: float
    first_seen_at: float
    action: Action = Action.NONE
    report: bool = False  # publish guard.unmanaged_running in this sweep
    stop_reason: str | None = None

    def detail(self) -> dict[str, Any]:
        v = self.version
        return {
            "project_arn": v.project_arn,
            "feature": v.feature,
            "version_arn": v.version_arn,
            "version_name": v.version_name,
            "status": v.status,
            "inference_units": v.min_units,
            "max_inference_units": v.max_units,
            "running_minutes": round(self.running_minutes, 1),
            "first_seen_at": datetime.fromtimestamp(self.first_seen_at, UTC).isoformat(),
            "reason": self.reason,
            "action": self.action.value,
        }


@dataclass(frozen=True)
class BudgetBreach:
    project: str
    limit_iu_hours: float
    used_iu_hours: float
    day: str
    versions: tuple[RunningVersion, ...]
    stop_until: float  # end of the UTC day (epoch seconds): the controller keeps it stopped until then


@dataclass(frozen=True)
class SweepResult:
    findings: list[Finding]
    breaches: list[BudgetBreach]
    memory: GuardMemory

    @property
    def unmanaged(self) -> list[Finding]:
        return [f for f in self.findings if not f.managed]

    @property
    def stops(self) -> list[tuple[RunningVersion, str]]:
        """Versions to stop (each once) with the reason, budget breaches first."""
        found: dict[str, tuple[RunningVersion, str]] = {}
        for breach in self.breaches:
            for version in breach.versions:
                found.setdefault(
                    version.version_arn,
                    (
                        version,
                        f"max_iu_hours_per_day {breach.limit_iu_hours:g} exceeded "
                        f"({breach.used_iu_hours:.2f} IU-hours on {breach.day})",
                    ),
                )
        for finding in self.findings:
            if finding.action is Action.STOP and finding.stop_reason:
                found.setdefault(finding.version.version_arn, (finding.version, finding.stop_reason))
        return list(found.values())


def day_of(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def end_of_day(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    midnight = datetime(moment.year, moment.month, moment.day, tzinfo=UTC) + timedelta(days=1)
    return midnight.timestamp()


def serving_wants_running(view: ProjectView, now: float, controller_rate_minutes: int) -> tuple[bool, str]:
    """Whether the serving policy wants the production version running now or one tick ago."""
    rules = serving_policy.Policy(
        idle_minutes=view.settings.idle_minutes,
        start_retry_limit=view.settings.start_retry_limit,
        pending_ttl_seconds=serving_policy.pending_ttl_seconds(
            view.settings.model_poll_seconds, controller_rate_minutes
        ),
    )
    reasons = []
    for at in (now, now - 2 * controller_rate_minutes * 60):
        observation = serving_policy.Observation(
            now=at,
            model_status=serving_policy.Status.RUNNING,
            queue_backlog=view.queue_backlog,
            in_window=in_window(view.settings.serving_windows, datetime.fromtimestamp(at, UTC)),
        )
        desired, why = serving_policy.desired_state(view.serving, observation, rules)
        if desired is serving_policy.Desired.RUNNING:
            return True, why
        reasons.append(why)
    return False, reasons[0]


def classify(
    version: RunningVersion, view: ProjectView | None, now: float, controller_rate_minutes: int
) -> tuple[bool, str]:
    """(managed, why) for one running version."""
    if view is None:
        return False, f"project {version.project} is not configured in this stack"
    if view.training_version_name and version.version_name == view.training_version_name:
        return True, "the version of the training in flight (blue/green start before promotion)"
    if view.production_version_arn is None:
        return False, f"no version of project {version.project} is in production"
    if version.version_arn != view.production_version_arn:
        return False, "not the production version of its project (an old or hand-started version)"
    if view.serving.transition_active(now):
        return (
            True,
            f"production version; the controller's {view.serving.transition} transition is in progress",
        )
    wanted, why = serving_wants_running(view, now, controller_rate_minutes)
    if wanted:
        return True, f"production version; the serving policy wants it running ({why})"
    return False, f"production version running while the serving policy wants it stopped ({why})"


def _accrue(previous: Seen | None, units: int, now: float, rate_minutes: int) -> float:
    """IU-hours since the previous sweep that saw the version running, counted from today's start."""
    if previous is None:
        return 0.0
    day_start = end_of_day(now) - 86400
    since = max(previous.last_seen_at, day_start, now - 2 * rate_minutes * 60)
    return max(0.0, now - since) * units / 3600


def sweep(
    running: list[RunningVersion],
    views: dict[str, ProjectView],
    memory: GuardMemory,
    guard: GuardSettings,
    *,
    now: float,
    controller_rate_minutes: int,
) -> SweepResult:
    """Classifies every running version, accrues usage, and decides what to report and stop."""
    today = day_of(now)
    usage = {name: u for name, u in memory.usage.items() if u.day == today}
    seen: dict[str, Seen] = {}
    findings: list[Finding] = []
    allowed = set(guard.stop_allowed_projects)
    for version in sorted(running, key=lambda v: (v.project, v.version_name)):
        if version.status not in ACTIVE_STATUSES:
            continue
        previous = memory.seen.get(version.version_arn)
        hours = _accrue(previous, version.min_units, now, guard.rate_minutes)
        if hours:
            current = usage.get(version.project, Usage(today))
            usage[version.project] = replace(current, iu_hours=current.iu_hours + hours)
        first = previous.first_seen_at if previous else now
        managed, why = classify(version, views.get(version.project), now, controller_rate_minutes)
        minutes = (now - first) / 60
        action, stop_reason = Action.NONE, None
        reported_at = previous.reported_at if previous else None
        report = False
        if not managed:
            action = Action.REPORT
            threshold = guard.stop_unmanaged_after_minutes
            if threshold is not None and version.project in allowed and minutes >= threshold:
                action = Action.STOP
                stop_reason = (
                    f"unmanaged for at least {minutes:.0f} min (guard.stop_unmanaged_after_minutes "
                    f"{threshold}); {why}"
                )
            report = action is Action.STOP or reported_at is None or now - reported_at >= REPORT_EVERY_SECONDS
            if report:
                reported_at = now
        else:
            reported_at = None
        seen[version.version_arn] = Seen(first, now, version.min_units, reported_at)
        findings.append(Finding(version, managed, why, minutes, first, action, report, stop_reason))

    breaches = []
    for project, used in sorted(usage.items()):
        view = views.get(project)
        budget = view.settings.max_iu_hours_per_day if view else None
        if budget is None or used.iu_hours < budget:
            continue
        versions = tuple(f.version for f in findings if f.version.project == project)
        if versions:
            breaches.append(BudgetBreach(project, budget, used.iu_hours, today, versions, end_of_day(now)))
    return SweepResult(findings, breaches, GuardMemory(seen, usage))
