"""Guard construct: its schedule, its alarm and its least-privilege role, synthesized under cdk-nag
with a stop allow-list and a budgeted project."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra.app_factory import REPO_ROOT
from infra.constructs.guard import Guard
from infra.constructs.notifications import Notifications
from infra.constructs.storage import Storage
from lambdas.common.constants import METRIC_UNMANAGED_MODELS_RUNNING
from lambdas.common.settings import load_cdk_context, settings_from_context


def synth_guard(outdir: str) -> tuple[Template, Guard]:
    context = load_cdk_context(str(REPO_ROOT / "cdk.json"))
    context["projects"]["digits"] = {"max_iu_hours_per_day": 8}
    context["guard"] = {
        "rate_minutes": 10,
        "stop_unmanaged_after_minutes": 30,
        "stop_allowed_projects": ["sandbox"],
    }
    app = App(outdir=outdir, context=context)
    settings = settings_from_context(context)
    stack = Stack(app, "GuardUnderTest")
    storage = Storage(stack, "Storage", settings=settings)
    notifications = Notifications(stack, "Notifications", settings=settings, key=storage.key)
    guard = Guard(stack, "Guard", settings=settings, storage=storage, notifications=notifications)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    app.synth()  # raises on any unacknowledged cdk-nag finding
    return Template.from_stack(stack), guard


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, Guard]:
    return synth_guard(str(tmp_path_factory.mktemp("guard-cdk")))


def _statements(template: Template, guard: Guard) -> list[dict[str, Any]]:
    role_id = Stack.of(guard).get_logical_id(guard.sweeper.role.node.default_child)  # type: ignore[arg-type]
    statements = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _resources(statement: dict[str, Any]) -> list[Any]:
    resources = statement["Resource"]
    return resources if isinstance(resources, list) else [resources]


def test_the_sweep_runs_on_the_rate_from_settings(synthesized: tuple[Template, Guard]) -> None:
    template, _ = synthesized
    (schedule,) = template.find_resources("AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["ScheduleExpression"] == "rate(10 minutes)"
    assert json.loads(schedule["Properties"]["Target"]["Input"]) == {"trigger": "schedule"}
    (function,) = [
        f
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "lambdas.guard.handler.handle"
    ]
    assert function["Properties"]["ReservedConcurrentExecutions"] == 1


def test_stop_is_granted_only_on_the_allowed_and_budgeted_projects(
    synthesized: tuple[Template, Guard],
) -> None:
    template, guard = synthesized
    statements = _statements(template, guard)
    stops = [s for s in statements if "rekognition:StopProjectVersion" in _actions(s)]
    assert len(stops) == 1
    resources = json.dumps(_resources(stops[0]))
    assert ":project/digits/version/*" in resources and ":project/sandbox/version/*" in resources
    assert ":project/moderation/" not in resources
    assert "*" not in [r for r in _resources(stops[0]) if isinstance(r, str)]
    # "*" only for the action without resource-level permissions (and X-Ray)
    for statement in statements:
        if "*" in _resources(statement):
            assert set(_actions(statement)) <= {
                "rekognition:DescribeProjects",
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
            }, statement
    (describe,) = [s for s in statements if "rekognition:DescribeProjectVersions" in _actions(s)]
    assert json.dumps(_resources(describe)).endswith(':project/*"]]}]')


def test_an_alarm_watches_unmanaged_models_and_notifies_the_lifecycle_topic(
    synthesized: tuple[Template, Guard],
) -> None:
    template, guard = synthesized
    (alarm,) = template.find_resources("AWS::CloudWatch::Alarm").values()
    properties = alarm["Properties"]
    assert properties["MetricName"] == METRIC_UNMANAGED_MODELS_RUNNING
    assert properties["Threshold"] == 1 and properties["Period"] == 600
    assert properties["Dimensions"] == [{"Name": "service", "Value": guard.sweeper.node.id}]
    assert len(properties["AlarmActions"]) == 1
    assert guard.alarms == [guard.alarm] and guard.functions == [guard.sweeper]
