"""The account guard, offline: the synthesized stack in the local runtime, whose scheduler fires the
guard's own schedule on the simulated clock, and models really trained and started on the local
Custom Labels engine, some of them by hand in a project the configuration does not know.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from autopilot.engine.testing import running_engine
from autopilot.local.runtime import LocalRuntime, running_stack
from autopilot.local.template import synth_template
from lambdas.common import config
from lambdas.common.constants import (
    EVENT_GUARD_BUDGET_EXCEEDED,
    EVENT_GUARD_STOPPED,
    EVENT_GUARD_UNMANAGED_RUNNING,
    ITEM_SERVING,
    OUTPUT_SETTINGS_PARAMETER,
    OUTPUT_STATE_TABLE,
)
from lambdas.common.production import ProductionRecord
from lambdas.common.settings import AppSettings, GuardSettings, ProjectSettings, load_cdk_context
from lambdas.guard import handler as guard_handler
from tests.integration.serving_support import BUCKET, train_model

pytestmark = [pytest.mark.slow]

CLOCK_SPEED = 300.0  # the guard's rate(15 minutes) fires every 3 s of real time
FAR_FUTURE = 4_000_000_000.0


def _settings() -> AppSettings:
    return AppSettings(
        projects={
            "gd-managed": ProjectSettings(),
            "gd-budget": ProjectSettings(max_iu_hours_per_day=0.2),
        },
        controller_rate_minutes=1,
        guard=GuardSettings(stop_unmanaged_after_minutes=0, stop_allowed_projects=("gd-stray",)),
    )


def _context() -> dict[str, Any]:
    """`_settings()` as cdk.json context: the stack is deployed with them (its IAM grants are per
    project, and the guard may stop only the allow-listed and budgeted projects' models)."""
    base = load_cdk_context("cdk.json")
    settings = _settings()
    return {
        "projects": {
            "defaults": base["projects"]["defaults"],
            **{
                name: project.model_dump(mode="json", exclude_defaults=True)
                for name, project in settings.projects.items()
            },
        },
        "controller_rate_minutes": settings.controller_rate_minutes,
        "guard": {**base["guard"], **settings.guard.model_dump(mode="json", exclude_defaults=True)},
    }


@pytest.fixture
def runtime(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalRuntime, Any]]:
    template = synth_template(_context(), outdir=str(tmp_path / "cdk"))
    with (
        running_engine(time_scale=0.002) as engine,
        running_stack(
            template, clock_speed=CLOCK_SPEED, extra_environment={"AWS_ENDPOINT_URL_REKOGNITION": engine.url}
        ) as local,
    ):
        # Only the guard's schedule runs on its own here: the stack's controller ticks and training
        # checks are held, so every action on these models is the guard's.
        local.pause_schedules("Serving")
        local.pause_schedules("Training")
        local.pause_schedules("Guard")
        parameter = local.output(OUTPUT_SETTINGS_PARAMETER)
        local.client("ssm").put_parameter(
            Name=parameter, Value=_settings().to_json(), Type="String", Overwrite=True
        )
        config.clear_cache()
        # The guard measures time with the runtime's simulated clock.
        monkeypatch.setattr(guard_handler, "clock", lambda: local.clock.now().timestamp())
        yield local, engine
    config.clear_cache()


def _guard_events(local: LocalRuntime) -> list[dict[str, Any]]:
    found = []
    for published in list(local.published):
        body = published.json()
        if isinstance(body, dict) and str(body.get("type", "")).startswith("guard."):
            found.append(body)
    return found


def _status(rk: Any, project_arn: str, name: str) -> str:
    return str(
        rk.describe_project_versions(ProjectArn=project_arn, VersionNames=[name])[
            "ProjectVersionDescriptions"
        ][0]["Status"]
    )


def _wait_running(rk: Any, project_arn: str, name: str) -> None:
    deadline = time.monotonic() + 60
    while _status(rk, project_arn, name) != "RUNNING":
        assert time.monotonic() < deadline, f"{name} never reached RUNNING"
        time.sleep(0.05)


def test_guard_reports_and_stops_unmanaged_models_enforces_budgets_and_leaves_managed_ones(
    runtime: tuple[LocalRuntime, Any],
) -> None:
    local, engine = runtime
    rk = engine.client()
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    table = local.output(OUTPUT_STATE_TABLE)
    dynamodb = local.client("dynamodb")

    # Given a configured project whose production version serves (a start override holds it) and
    # whose old version was left RUNNING
    managed_arn, managed_v1, _ = train_model(rk, "gd-managed", per_label=6)
    managed_v0 = rk.create_project_version(
        ProjectArn=managed_arn,
        VersionName="v0",
        OutputConfig={"S3Bucket": BUCKET, "S3KeyPrefix": "gd-managed/training-output"},
    )["ProjectVersionArn"]
    # a configured project with a daily budget of 0.2 inference-unit hours, serving likewise
    budget_arn, budget_v1, _ = train_model(rk, "gd-budget", per_label=6)
    # and a project outside the configuration, with a model started by hand
    stray_arn, stray_v1, _ = train_model(rk, "gd-stray", per_label=6)
    for project, version in (("gd-managed", managed_v1), ("gd-budget", budget_v1)):
        record = ProductionRecord(project, version, "v1", 0.9, "2026-11-29T00:00:00+00:00")
        dynamodb.put_item(TableName=table, Item=record.to_attribute_values())
        dynamodb.put_item(
            TableName=table,
            Item={
                "pk": {"S": f"PROJECT#{project}"},
                "sk": {"S": ITEM_SERVING},
                "override_state": {"S": "RUNNING"},
                "override_until": {"N": str(int(FAR_FUTURE))},
            },
        )
    deadline = time.monotonic() + 60
    while _status(rk, managed_arn, "v0") == "TRAINING_IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for arn in (managed_v1, managed_v0, budget_v1, stray_v1):
        rk.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=1)
    for project_arn, name in (
        (managed_arn, "v1"),
        (managed_arn, "v0"),
        (budget_arn, "v1"),
        (stray_arn, "v1"),
    ):
        _wait_running(rk, project_arn, name)

    # When the guard's schedule runs on the runtime's clock (rate(15 minutes) from cdk.json)
    (schedule,) = [s for s in local.schedules if "Guard" in s.logical_id]
    assert schedule.expression == "rate(15 minutes)"
    local.resume_schedules("Guard")
    assert local.run_until(
        lambda: any(e["type"] == EVENT_GUARD_BUDGET_EXCEEDED for e in _guard_events(local)), timeout_s=60
    ), [e["type"] for e in _guard_events(local)]
    local.pause_schedules("Guard")
    events = _guard_events(local)
    sweeps = [i for i in local.lambdas.invocations if "GuardSweep" in i.function_name]
    assert sweeps and all(i.error is None for i in sweeps), [i.error for i in sweeps]

    # Then the hand-started model of the unconfigured project was reported at the first sweep and stopped
    stray = [e for e in events if e["project"] == "gd-stray"]
    reported = next(e for e in stray if e["type"] == EVENT_GUARD_UNMANAGED_RUNNING)
    assert reported["detail"]["version_arn"] == stray_v1
    assert reported["detail"]["inference_units"] == 1 and reported["detail"]["running_minutes"] >= 0
    assert "not configured" in reported["detail"]["reason"] and reported["detail"]["stopped"] is True
    stopped = next(e for e in stray if e["type"] == EVENT_GUARD_STOPPED)
    assert (
        stopped["detail"]["stopped"] is True
        and "guard.stop_unmanaged_after_minutes" in stopped["detail"]["reason"]
    )
    assert _status(rk, stray_arn, "v1") in ("STOPPING", "STOPPED")
    # the configured project's old version was reported, and left alone (its project is not allow-listed)
    old = [
        e
        for e in events
        if e["type"] == EVENT_GUARD_UNMANAGED_RUNNING and e["detail"]["version_arn"] == managed_v0
    ]
    assert old and "not the production version" in old[0]["detail"]["reason"]
    assert _status(rk, managed_arn, "v0") == "RUNNING"
    # the budget overrun stopped the budgeted model, with the event naming the budget, and holds it
    # stopped for the rest of the UTC day (over the start override)
    (breach,) = [e for e in events if e["type"] == EVENT_GUARD_BUDGET_EXCEEDED]
    assert breach["project"] == "gd-budget"
    assert breach["detail"]["budget"] == "max_iu_hours_per_day" and breach["detail"]["limit_iu_hours"] == 0.2
    assert breach["detail"]["used_iu_hours"] >= 0.2 and breach["detail"]["stopped"] == [budget_v1]
    assert _status(rk, budget_arn, "v1") in ("STOPPING", "STOPPED")
    serving = dynamodb.get_item(
        TableName=table,
        Key={"pk": {"S": "PROJECT#gd-budget"}, "sk": {"S": ITEM_SERVING}},
        ConsistentRead=True,
    )["Item"]
    assert serving["override_state"]["S"] == "STOPPED"
    # and nothing managed was touched: the serving production version runs, no event names it
    assert _status(rk, managed_arn, "v1") == "RUNNING"
    assert not [e for e in events if e["detail"].get("version_arn") == managed_v1]
    assert not [e for e in events if e["type"] == EVENT_GUARD_STOPPED and e["project"] == "gd-managed"]
    # the sweep's memory: the running versions it saw, and today's usage per project
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": "GUARD"}, "sk": {"S": "SWEEP"}})["Item"]
    memory = json.loads(item["memory"]["S"])
    assert memory["usage"]["gd-budget"]["iu_hours"] >= 0.2
    for arn in (managed_v1, managed_v0):
        rk.stop_project_version(ProjectVersionArn=arn)
