"""The monitoring construct: a dashboard, an alarm on every dead-letter queue, failed workflows,
models running outside their window and function errors; e-mail from settings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Match, Template

from infra.app_factory import build_app
from infra.constructs.monitoring import Monitoring
from lambdas.common.constants import METRIC_MODEL_RUNNING_UNWANTED_MINUTES
from lambdas.common.settings import settings_from_context


@pytest.fixture(scope="module")
def stack_and_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Template]:
    _app, stack = build_app(outdir=str(tmp_path_factory.mktemp("cdk-monitoring")), nag=False)
    return stack, Template.from_stack(stack)


def _alarms(template: Template) -> dict[str, Any]:
    return template.find_resources("AWS::CloudWatch::Alarm")


def test_dashboard_covers_every_concern(stack_and_template: tuple[Any, Template]) -> None:
    _, template = stack_and_template
    dashboards = template.find_resources("AWS::CloudWatch::Dashboard")
    assert len(dashboards) == 1
    body = json.dumps(next(iter(dashboards.values()))["Properties"]["DashboardBody"])
    for title in (
        "Ingestion",
        "Workflows",
        "Model running minutes",
        "Detections",
        "Function errors",
        "Alarms",
    ):
        assert title in body


def test_every_dead_letter_queue_has_an_alarm(stack_and_template: tuple[Any, Template]) -> None:
    stack, template = stack_and_template
    # Given every queue that another queue redrives to
    dead_letter_ids = set()
    for queue in template.find_resources("AWS::SQS::Queue").values():
        policy = queue["Properties"].get("RedrivePolicy")
        if policy:
            dead_letter_ids.add(policy["deadLetterTargetArn"]["Fn::GetAtt"][0])
    assert dead_letter_ids, "the stack has no dead-letter queues yet"
    # Then each one is the QueueName dimension of some alarm (the construct's own or monitoring's)
    alarmed = set()
    for alarm in _alarms(template).values():
        for dimension in alarm["Properties"].get("Dimensions", []):
            if dimension["Name"] == "QueueName":
                alarmed.add(dimension["Value"]["Fn::GetAtt"][0])
    # And so is every dead-letter queue the constructs expose (Lambda and Scheduler DLQs too)
    exposed = {stack.get_logical_id(q.node.default_child) for q in stack.monitoring.dlqs}
    assert dead_letter_ids <= exposed
    assert exposed <= alarmed


def test_failed_executions_and_model_running_too_long_alarm(stack_and_template: tuple[Any, Template]) -> None:
    stack, template = stack_and_template
    machines = template.find_resources("AWS::StepFunctions::StateMachine")
    failed = [
        a
        for a in _alarms(template).values()
        if "ExecutionsFailed" in json.dumps(a["Properties"].get("Metrics", []))
    ]
    assert len(failed) == len(machines) >= 1
    for project in stack.settings.projects:
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "MetricName": METRIC_MODEL_RUNNING_UNWANTED_MINUTES,
                "Dimensions": Match.array_with([{"Name": "project", "Value": project}]),
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            },
        )


def test_alarms_notify_the_lifecycle_topic(stack_and_template: tuple[Any, Template]) -> None:
    stack, template = stack_and_template
    topic_id = stack.get_logical_id(stack.notifications.lifecycle_topic.node.default_child)
    for alarm in stack.monitoring.alarms:
        logical_id = stack.get_logical_id(alarm.node.default_child)
        actions = _alarms(template)[logical_id]["Properties"]["AlarmActions"]
        assert actions == [{"Ref": topic_id}]


def test_tolerates_missing_constructs_and_subscribes_email_without_a_topic() -> None:
    # Given a stack with none of the concerns, one DLQ, and an e-mail in settings
    settings = settings_from_context({"projects": {"p1": {}}, "notification_email": "ops@example.com"})
    app = App()
    stack = Stack(app, "Bare")
    dlq = sqs.Queue(stack, "Dlq")
    sqs.Queue(stack, "Work", dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=3))
    # When monitoring is added
    Monitoring(stack, "Monitoring", settings=settings, stack=stack)
    template = Template.from_stack(stack)
    # Then the DLQ is alarmed and alarms go to its own topic with the e-mail subscription
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"MetricName": "ApproximateNumberOfMessagesVisible", "Threshold": 1}
    )
