"""Serving construct: synthesized with storage, notifications and detection under cdk-nag."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from infra.app_factory import REPO_ROOT
from infra.constructs.detection import Detection
from infra.constructs.notifications import Notifications
from infra.constructs.serving import Serving, model_control_definition
from infra.constructs.storage import Storage
from lambdas.common.settings import load_cdk_context, settings_from_context


def synth_serving_stack(outdir: str) -> tuple[Template, Serving, Detection]:
    """Storage + notifications + serving + detection in one stack; app.synth() runs cdk-nag."""
    context = load_cdk_context(str(REPO_ROOT / "cdk.json"))
    app = App(outdir=outdir, context=context)
    settings = settings_from_context(context)
    stack = Stack(app, "ServingUnderTest")
    storage = Storage(stack, "Storage", settings=settings)
    notifications = Notifications(stack, "Notifications", settings=settings, key=storage.key)
    serving = Serving(stack, "Serving", settings=settings, storage=storage, notifications=notifications)
    detection = Detection(
        stack, "Detection", settings=settings, storage=storage, notifications=notifications, serving=serving
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    app.synth()  # raises ValidationFailed on any unacknowledged cdk-nag finding
    return Template.from_stack(stack), serving, detection


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, Serving, Detection]:
    return synth_serving_stack(str(tmp_path_factory.mktemp("serving-cdk")))


@pytest.fixture(scope="module")
def template(synthesized: tuple[Template, Serving, Detection]) -> Template:
    return synthesized[0]


def definition_of(template: Template) -> str:
    [machine] = template.find_resources("AWS::StepFunctions::StateMachine").values()
    definition: Any = machine["Properties"]["DefinitionString"]
    return definition if isinstance(definition, str) else json.dumps(definition)


def test_construct_attributes_follow_the_conventions(
    synthesized: tuple[Template, Serving, Detection],
) -> None:
    _, serving, _ = synthesized
    assert serving.state_machine is not None
    assert [function.function.node.id for function in serving.functions] == ["Function"]
    assert len(serving.schedules) == 1  # only the CUSTOM_LABELS project "digits" is served


def test_state_machine_runs_the_shared_definition_with_logs_and_tracing(template: Template) -> None:
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "DefinitionSubstitutions": {"StateTable": Match.any_value(), "LifecycleTopic": Match.any_value()},
            "LoggingConfiguration": Match.object_like({"Level": "ALL"}),
            "TracingConfiguration": {"Enabled": True},
        },
    )
    body = definition_of(template)
    for state in model_control_definition()["States"]:
        assert state in body
    assert "aws-sdk:rekognition:startProjectVersion" in body
    assert "SecondsPath" in body  # Wait seconds come from the input


def test_state_machine_may_only_start_and_stop_configured_projects(template: Template) -> None:
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": [
                                    "rekognition:StartProjectVersion",
                                    "rekognition:StopProjectVersion",
                                ],
                                "Resource": {
                                    "Fn::Join": [
                                        "",
                                        Match.array_with(
                                            [Match.string_like_regexp("project/digits/version/\\*")]
                                        ),
                                    ]
                                },
                            }
                        )
                    ]
                )
            }
        },
    )


def test_schedule_ticks_each_served_project(template: Template) -> None:
    template.resource_count_is("AWS::Scheduler::Schedule", 1)
    template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": "rate(1 minute)",
            "Target": Match.object_like(
                {"Input": json.dumps({"project": "digits", "trigger": "schedule"}, separators=(",", ":"))}
            ),
        },
    )


def test_on_demand_rule_matches_control_requests(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["custom-labels-autopilot"],
                "detail-type": ["Autopilot Model Control Requested"],
            }
        },
    )


def test_controller_environment_includes_the_detection_queue(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "lambdas.serving.controller.handle",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "MODEL_CONTROL_STATE_MACHINE_ARN": Match.any_value(),
                        "STATE_TABLE_NAME": Match.any_value(),
                        "SETTINGS_PARAMETER_NAME": Match.any_value(),
                        "DETECTION_QUEUE_URL": Match.any_value(),
                    }
                )
            },
        },
    )


def test_state_machine_writes_the_usage_ledger(template: Template) -> None:
    # Each recorded RUNNING and STOPPED also puts a USAGE# item (what `autopilot cost` reads)
    body = definition_of(template)
    assert "LedgerRunning" in body and "LedgerStopped" in body
    assert "dynamodb:putItem" in body and "USAGE#" in body
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Action": Match.array_with(["dynamodb:PutItem", "dynamodb:UpdateItem"])}
                        )
                    ]
                )
            }
        },
    )
