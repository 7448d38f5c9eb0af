"""Model serving control: the controller Lambda, its schedules and trigger rule, and the start/stop
state machine.

The state machine is plain ASL built by `model_control_definition()` with two substitutions
(${StateTable}, ${LifecycleTopic}); the integration tests run exactly this definition offline.
It calls Rekognition, DynamoDB and SNS directly (no Lambda): start or stop the version, then poll
DescribeProjectVersions every `poll_seconds` (from the input) at most `max_polls` times, record
the outcome on the SERVING item (which also releases the transition lock) and publish the
lifecycle event.
"""

from __future__ import annotations

import json
from typing import Unpack

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.app import AppConstruct, AppScope
from infra.constructs.function import AutopilotFunction
from infra.constructs.nag import acknowledge_iam5
from infra.constructs.queues import dead_letter_queue
from infra.workflows.model_control import (
    LIFECYCLE_TOPIC_TOKEN,
    STATE_TABLE_TOKEN,
    model_control_definition,
)
from infra.workflows.model_control import render_definition as render_definition
from lambdas.common.config import ControllerEnvironment
from lambdas.common.constants import (
    CONTROL_TRIGGER_SCHEDULE,
    DETAIL_TYPE_MODEL_CONTROL_REQUESTED,
    EVENT_SOURCE,
    FEATURE_CUSTOM_LABELS,
    SERVICE_MODEL_CONTROLLER,
)
from lambdas.serving.windows import validate_windows


class Serving(AppConstruct):
    def __init__(self, scope: Construct, construct_id: str, **app: Unpack[AppScope]) -> None:
        super().__init__(scope, construct_id, **app)
        settings, storage, notifications = self.settings, self.storage, self.notifications
        served = [
            name for name, project in settings.projects.items() if project.feature == FEATURE_CUSTOM_LABELS
        ]
        for project in settings.projects.values():
            validate_windows(project.serving_windows)

        # --- start/stop state machine -------------------------------------------------------
        self.state_machine_logs = logs.LogGroup(
            self,
            "StateMachineLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "ModelControl",
            definition_body=sfn.DefinitionBody.from_string(json.dumps(model_control_definition())),
            definition_substitutions={
                STATE_TABLE_TOKEN: storage.state_table.table_name,
                LIFECYCLE_TOPIC_TOKEN: notifications.lifecycle_topic.topic_arn,
            },
            logs=sfn.LogOptions(destination=self.state_machine_logs, level=sfn.LogLevel.ALL),
            tracing_enabled=True,
            comment="Starts or stops a Custom Labels model version and waits for RUNNING/STOPPED",
        )
        role = self.state_machine.role
        # A stack without served projects names a project that does not exist ("none").
        self.allow(
            role,
            ["rekognition:StartProjectVersion", "rekognition:StopProjectVersion"],
            self.rekognition_arns(served or ["none"], "version/*"),
        )
        self.allow(role, ["rekognition:DescribeProjectVersions"], self.rekognition_arns(served or ["none"]))
        storage.state_table.grant(role, "dynamodb:UpdateItem", "dynamodb:PutItem")
        notifications.lifecycle_topic.grant_publish(role)
        version_wildcards = [f"Resource::{_nag_arn(f'project/{name}/version/*')}" for name in served]
        project_wildcards = [f"Resource::{_nag_arn(f'project/{name}/*')}" for name in served]
        acknowledge_iam5(
            self.state_machine,
            {
                **dict.fromkeys(
                    version_wildcards + project_wildcards,
                    "Rekognition project and version ARNs end in creation timestamps (and version names) "
                    "only known after creation; the wildcard is scoped to one configured project name.",
                ),
                "Resource::*": "X-Ray trace segments and CloudWatch Logs log delivery accept only '*'.",
                "Action::kms:GenerateDataKey*": "SNS publish to the topic encrypted with the stack key; "
                "the grant is limited to that one key.",
            },
        )

        # --- controller ---------------------------------------------------------------------
        self.controller = self.function(
            "Controller",
            ControllerEnvironment,
            {"state_machine_arn": self.state_machine.state_machine_arn},
            handler="lambdas.serving.controller.handle",
            service_name=SERVICE_MODEL_CONTROLLER,
            description="the model controller: starts and stops Custom Labels models on demand",
            timeout=Duration.seconds(60),
            memory_size=256,
        )
        controller_role = self.controller.role
        storage.state_table.grant_read_write_data(controller_role)
        storage.settings_parameter.grant_read(controller_role)
        notifications.lifecycle_topic.grant_publish(controller_role)
        self.state_machine.grant_start_execution(controller_role)
        project_arns = self.rekognition_arns(served or ["none"])
        self.allow(controller_role, ["rekognition:DescribeProjectVersions"], project_arns)
        # DescribeProjects supports no resource-level permissions.
        self.allow(controller_role, ["rekognition:DescribeProjects"], ["*"])
        acknowledge_iam5(
            self.controller,
            {
                **dict.fromkeys(
                    project_wildcards,
                    "Rekognition project ARNs end in a creation timestamp only known after creation; the "
                    "wildcard is scoped to one configured project name.",
                ),
                "Resource::*": "rekognition:DescribeProjects has no resource-level permissions; X-Ray trace "
                "segments accept only '*'.",
                "Action::kms:GenerateDataKey*": "SNS publish to the topic, and failed asynchronous "
                "invocations sent to the control dead-letter queue, both encrypted with the stack key; "
                "the grant is limited to that one key.",
                "Action::kms:ReEncrypt*": "The on-failure destination queue is encrypted with the stack key; "
                "CDK's SQS send grant on that one key.",
            },
        )
        # On-demand control requests (CLI, detection) that EventBridge could not deliver, or whose
        # asynchronous invocation still failed after Lambda's retries, are kept here (with an alarm).
        self.dlq = dead_letter_queue(
            self,
            "ControlDlq",
            key=storage.key,
            holds="model control requests that could not be delivered or failed after retries",
        )
        self.controller.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.dlq), retry_attempts=2
        )

        # --- triggers -----------------------------------------------------------------------
        self.schedules: list[scheduler.Schedule] = []
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
            description="Lets EventBridge Scheduler invoke only the model controller",
        )
        acknowledge_iam5(
            self.scheduler_role,
            {
                f"Resource::<{_logical_ref(self.controller)}.Arn>:*": (
                    "Scheduler's Lambda target grants invoke on the controller function and its versions; "
                    "no other function is reachable."
                ),
            },
        )
        for name in served:
            self.schedules.append(
                scheduler.Schedule(
                    self,
                    f"Tick-{name}",
                    description=f"Model controller tick for project {name}",
                    schedule=scheduler.ScheduleExpression.rate(
                        Duration.minutes(settings.controller_rate_minutes)
                    ),
                    target=scheduler_targets.LambdaInvoke(
                        self.controller.function,
                        input=scheduler.ScheduleTargetInput.from_object(
                            {"project": name, "trigger": CONTROL_TRIGGER_SCHEDULE}
                        ),
                        role=self.scheduler_role,
                        retry_attempts=0,
                        max_event_age=Duration.minutes(settings.controller_rate_minutes),
                    ),
                )
            )
        self.rule = self.invoke_on(
            "ControlRequested",
            self.controller,
            description="On-demand model control requests (CLI, detection)",
            pattern=events.EventPattern(
                source=[EVENT_SOURCE], detail_type=[DETAIL_TYPE_MODEL_CONTROL_REQUESTED]
            ),
            dead_letter_queue=self.dlq,
            retry_attempts=2,
            max_event_age=Duration.minutes(15),
        )


def _nag_arn(resource: str) -> str:
    """An ARN as cdk-nag prints it in finding ids."""
    return f"arn:<AWS::Partition>:rekognition:<AWS::Region>:<AWS::AccountId>:{resource}"


def _logical_ref(function: AutopilotFunction) -> str:
    stack = Stack.of(function)
    return stack.get_logical_id(function.function.node.default_child)  # type: ignore[arg-type]
