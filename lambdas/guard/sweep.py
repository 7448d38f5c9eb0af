"""One sweep of the account guard: what runs in every Rekognition project of the account and
region, what of it the controller does not manage (policy.sweep), and what the guard does about it:
`guard.unmanaged_running`, stops the settings allow (`guard.stopped`), the daily inference-unit
budgets (`guard.budget_exceeded`), and the sweep's metrics.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from lambdas.common.config import GuardEnvironment
from lambdas.common.constants import (
    EVENT_GUARD_BUDGET_EXCEEDED,
    EVENT_GUARD_STOPPED,
    EVENT_GUARD_UNMANAGED_RUNNING,
    METRIC_GUARD_STOPS,
    METRIC_UNMANAGED_INFERENCE_UNITS,
    METRIC_UNMANAGED_MODELS_RUNNING,
)
from lambdas.common.events import LifecyclePublisher
from lambdas.common.production import get_production
from lambdas.common.settings import AppSettings
from lambdas.guard import policy
from lambdas.guard.gateways import AccountModels, GuardStore
from lambdas.serving.gateways import QueueBacklog
from lambdas.serving.policy import Desired
from lambdas.serving.state import ServingStore
from lambdas.training.state import TrainingStateStore

logger = Logger(child=True)


@dataclass
class GuardDeps:
    models: AccountModels
    store: GuardStore
    serving: ServingStore
    training: TrainingStateStore
    queue: QueueBacklog
    publisher: LifecyclePublisher
    state_table: str


@functools.cache
def build_deps(environment: GuardEnvironment) -> GuardDeps:
    return GuardDeps(
        models=AccountModels(),
        store=GuardStore(environment.state_table),
        serving=ServingStore(environment.state_table),
        training=TrainingStateStore(environment.state_table),
        queue=QueueBacklog(environment.detection_queue_url),
        publisher=LifecyclePublisher(environment.lifecycle_topic),
        state_table=environment.state_table,
    )


def project_views(
    settings: AppSettings, running: list[policy.RunningVersion], deps: GuardDeps, now: float
) -> dict[str, policy.ProjectView]:
    """What is managed in each configured project that has a running version."""
    views: dict[str, policy.ProjectView] = {}
    backlog: int | None = None
    for name in sorted({v.project for v in running} & set(settings.projects)):
        production = get_production(name, table_name=deps.state_table, client=deps.serving.client)
        training = deps.training.get_training(name)
        if backlog is None:
            backlog = deps.queue.backlog()
        views[name] = policy.ProjectView(
            settings=settings.project(name),
            production_version_arn=production.version_arn if production else None,
            training_version_name=training.version_name if training.locked(int(now)) else None,
            serving=deps.serving.load(name),
            queue_backlog=backlog,
        )
    return views


def _metric(name: str, value: float) -> None:
    with single_metric(name=name, unit=MetricUnit.Count, value=value):
        pass


def run_sweep(settings: AppSettings, deps: GuardDeps, now: float) -> dict[str, Any]:
    running, project_count = deps.models.running_versions()
    views = project_views(settings, running, deps, now)
    result = policy.sweep(
        running,
        views,
        deps.store.load(),
        settings.guard,
        now=now,
        controller_rate_minutes=settings.controller_rate_minutes,
    )
    stopped: dict[str, str] = {}
    for version, reason in result.stops:
        try:
            status = deps.models.stop(version.version_arn)
        except ClientError as error:
            logger.warning("guard could not stop a version", extra={"version_arn": version.version_arn})
            outcome: dict[str, Any] = {"stopped": False, "reason": reason, "error": str(error)}
        else:
            stopped[version.version_arn] = status
            outcome = {"stopped": True, "status": status, "reason": reason}
        deps.publisher.publish(
            EVENT_GUARD_STOPPED,
            version.project,
            version_arn=version.version_arn,
            version_name=version.version_name,
            **outcome,
        )
    for breach in result.breaches:
        # The controller keeps the production version stopped until the end of the UTC day,
        # serving windows and waiting work notwithstanding (a "stop" override wins over both).
        deps.serving.set_override(breach.project, Desired.STOPPED, breach.stop_until)
        deps.publisher.publish(
            EVENT_GUARD_BUDGET_EXCEEDED,
            breach.project,
            budget="max_iu_hours_per_day",
            limit_iu_hours=breach.limit_iu_hours,
            used_iu_hours=round(breach.used_iu_hours, 3),
            day=breach.day,
            stopped=[v.version_arn for v in breach.versions if v.version_arn in stopped],
            held_stopped_until=datetime.fromtimestamp(breach.stop_until, UTC).isoformat(),
        )
    for finding in result.unmanaged:
        if finding.report:
            detail = finding.detail()
            detail["stopped"] = finding.version.version_arn in stopped
            deps.publisher.publish(EVENT_GUARD_UNMANAGED_RUNNING, finding.version.project, **detail)
    deps.store.save(result.memory, datetime.fromtimestamp(now, UTC).isoformat())
    unmanaged = result.unmanaged
    _metric(METRIC_UNMANAGED_MODELS_RUNNING, len(unmanaged))
    _metric(METRIC_UNMANAGED_INFERENCE_UNITS, sum(f.version.min_units for f in unmanaged))
    _metric(METRIC_GUARD_STOPS, len(stopped))
    return {
        "projects": project_count,
        "running": [f.version.version_arn for f in result.findings],
        "unmanaged": [{"project": f.version.project, **f.detail()} for f in unmanaged],
        "stopped": sorted(stopped),
        "budget_exceeded": [b.project for b in result.breaches],
    }
