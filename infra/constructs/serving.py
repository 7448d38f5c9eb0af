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
from typing import Any, Unpack

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
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
from infra.step_functions_errors import rekognition_error, transient_errors
from lambdas.common.config import ControllerEnvironment
from lambdas.common.constants import (
    ATTR_EVENT_TYPE,
    ATTR_PROJECT,
    CONTROL_TRIGGER_SCHEDULE,
    DETAIL_TYPE_MODEL_CONTROL_REQUESTED,
    EVENT_MODEL_RUNNING,
    EVENT_MODEL_START_FAILED,
    EVENT_MODEL_STOP_FAILED,
    EVENT_MODEL_STOPPED,
    EVENT_SOURCE,
    FEATURE_CUSTOM_LABELS,
    ITEM_SERVING,
    ITEM_USAGE_PREFIX,
    PROJECT_PK_PREFIX,
    SERVICE_MODEL_CONTROLLER,
    STATE_PK,
    STATE_SK,
    STATE_TTL_ATTRIBUTE,
    TRANSITION_START,
    TRANSITION_STOP,
)
from lambdas.serving.policy import LOCK_MARGIN_SECONDS, TRANSITION_TIMEOUT_SECONDS
from lambdas.serving.windows import validate_windows

STATE_TABLE_TOKEN = "StateTable"
LIFECYCLE_TOPIC_TOKEN = "LifecycleTopic"
DEFINITION_SUBSTITUTIONS = (STATE_TABLE_TOKEN, LIFECYCLE_TOPIC_TOKEN)


def _sdk(action: str) -> str:
    return f"arn:aws:states:::aws-sdk:rekognition:{action}"


def _retry() -> list[dict[str, Any]]:
    return [{"ErrorEquals": transient_errors(), "IntervalSeconds": 2, "MaxAttempts": 4, "BackoffRate": 2.0}]


def _record(next_state: str, status_path: str | None, status: str | None, reset_attempts: bool) -> dict:
    """DynamoDB UpdateItem on the SERVING item: record the status and release the transition lock."""
    sets = ["model_status = :s", "status_changed_at = :t"] + (
        ["start_attempts = :zero"] if reset_attempts else []
    )
    values: dict[str, Any] = {
        ":s": {"S.$": status_path} if status_path else {"S": status},
        ":t": {"S.$": "$$.State.EnteredTime"},
    }
    if reset_attempts:
        values[":zero"] = {"N": "0"}
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::dynamodb:updateItem",
        "Parameters": {
            "TableName": "${" + STATE_TABLE_TOKEN + "}",
            "Key": {
                STATE_PK: {"S.$": f"States.Format('{PROJECT_PK_PREFIX}{{}}', $.project)"},
                STATE_SK: {"S": ITEM_SERVING},
            },
            "UpdateExpression": "SET "
            + ", ".join(sets)
            + " REMOVE transition, transition_expires_at, execution_arn",
            "ExpressionAttributeValues": values,
        },
        "ResultPath": None,
        "Retry": [
            {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2.0}
        ],
        "Next": next_state,
    }


def _ledger(status: str, next_state: str) -> list[tuple[str, dict]]:
    """Two states that append a usage-ledger item (lambdas.serving.usage) for `status`: the time
    it was recorded, the version and its inference units; kept until `ledger_expires_at`. A ledger
    write that keeps failing is noted under $.ledger_error and never fails the transition."""
    stamp, write = f"Stamp{status.title()}", f"Ledger{status.title()}"
    return [
        (
            stamp,
            {
                "Type": "Pass",
                "Parameters": {"at.$": "$$.State.EnteredTime"},
                "ResultPath": "$.ledger",
                "Next": write,
            },
        ),
        (
            write,
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::dynamodb:putItem",
                "Parameters": {
                    "TableName": "${" + STATE_TABLE_TOKEN + "}",
                    "Item": {
                        STATE_PK: {"S.$": f"States.Format('{PROJECT_PK_PREFIX}{{}}', $.project)"},
                        STATE_SK: {"S.$": f"States.Format('{ITEM_USAGE_PREFIX}{{}}#{status}', $.ledger.at)"},
                        "status": {"S": status},
                        "at": {"S.$": "$.ledger.at"},
                        "version": {"S.$": "$.version_name"},
                        "reason": {"S.$": "$.reason"},
                        "units": {"N.$": "States.Format('{}', $.min_inference_units)"},
                        STATE_TTL_ATTRIBUTE: {"N.$": "States.Format('{}', $.ledger_expires_at)"},
                    },
                },
                "ResultPath": None,
                "Retry": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "IntervalSeconds": 1,
                        "MaxAttempts": 3,
                        "BackoffRate": 2.0,
                    }
                ],
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.ledger_error", "Next": next_state}
                ],
                "Next": next_state,
            },
        ),
    ]


def _event(event_type: str, next_state: str, reason: str) -> dict:
    """Builds the lifecycle message (same shape as lambdas.common.events) under $.event."""
    return {
        "Type": "Pass",
        "Parameters": {
            "source": EVENT_SOURCE,
            "type": event_type,
            "project.$": "$.project",
            "time.$": "$$.State.EnteredTime",
            "detail": {
                "version_arn.$": "$.version_arn",
                "attempt.$": "$.attempt",
                "execution_arn.$": "$$.Execution.Id",
                "status.$": "$.describe.version.Status",
                "error.$": "$.error",
                "reason": reason,
            },
        },
        "ResultPath": "$.event",
        "Next": next_state,
    }


def _publish(event_type: str, next_state: str) -> dict:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::sns:publish",
        "Parameters": {
            "TopicArn": "${" + LIFECYCLE_TOPIC_TOKEN + "}",
            "Subject.$": f"States.Format('[autopilot] {{}}: {event_type}', $.project)",
            "Message.$": "States.JsonToString($.event)",
            "MessageAttributes": {
                ATTR_EVENT_TYPE: {"DataType": "String", "StringValue": event_type},
                ATTR_PROJECT: {"DataType": "String", "StringValue.$": "$.project"},
            },
        },
        "ResultPath": None,
        "Retry": [
            {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2.0}
        ],
        "Next": next_state,
    }


def _start_task(with_max: bool) -> dict:
    parameters = {"ProjectVersionArn.$": "$.version_arn", "MinInferenceUnits.$": "$.min_inference_units"}
    if with_max:
        parameters["MaxInferenceUnits.$"] = "$.max_inference_units"
    return {
        "Type": "Task",
        "Resource": _sdk("startProjectVersion"),
        "Parameters": parameters,
        "ResultPath": None,
        "Retry": _retry(),
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "StartRefused"}],
        "Next": "WaitForStatus",
    }


def model_control_definition() -> dict[str, Any]:
    """ASL of the start/stop state machine; input built by lambdas.serving.control.transition_input."""
    # A start of a version already starting (or a stop of one already stopping): wait for its status.
    in_use = rekognition_error("ResourceInUseException")
    states: dict[str, Any] = {
        "InitPolls": {
            "Type": "Pass",
            "Parameters": {"count": 0},
            "ResultPath": "$.poll",
            "Next": "InitStatus",
        },
        "InitStatus": {
            "Type": "Pass",
            "Parameters": {"version": {"Status": "UNKNOWN"}},
            "ResultPath": "$.describe",
            "Next": "InitError",
        },
        "InitError": {
            "Type": "Pass",
            "Parameters": {"Error": "none", "Cause": "none"},
            "ResultPath": "$.error",
            "Next": "Route",
        },
        "Route": {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.action", "StringEquals": TRANSITION_START},
                        {"Variable": "$.max_inference_units", "IsPresent": True},
                        {"Not": {"Variable": "$.max_inference_units", "IsNull": True}},
                    ],
                    "Next": "StartModelWithAutoScaling",
                },
                {"Variable": "$.action", "StringEquals": TRANSITION_START, "Next": "StartModel"},
                {"Variable": "$.action", "StringEquals": TRANSITION_STOP, "Next": "StopModel"},
            ],
            "Default": "UnknownAction",
        },
        "UnknownAction": {
            "Type": "Fail",
            "Error": "UnknownAction",
            "Cause": f"input action must be {TRANSITION_START} or {TRANSITION_STOP}",
        },
        "StartModel": _start_task(with_max=False),
        "StartModelWithAutoScaling": _start_task(with_max=True),
        "StartRefused": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.error.Error", "StringEquals": in_use, "Next": "WaitForStatus"}],
            "Default": "StartFailedEvent",
        },
        "StopModel": {
            "Type": "Task",
            "Resource": _sdk("stopProjectVersion"),
            "Parameters": {"ProjectVersionArn.$": "$.version_arn"},
            "ResultPath": None,
            "Retry": _retry(),
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "StopRefused"}],
            "Next": "WaitForStatus",
        },
        "StopRefused": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.error.Error", "StringEquals": in_use, "Next": "WaitForStatus"}],
            "Default": "StopFailedEvent",
        },
        "WaitForStatus": {"Type": "Wait", "SecondsPath": "$.poll_seconds", "Next": "DescribeVersion"},
        "DescribeVersion": {
            "Type": "Task",
            "Resource": _sdk("describeProjectVersions"),
            "Parameters": {"ProjectArn.$": "$.project_arn", "VersionNames.$": "States.Array($.version_name)"},
            "ResultSelector": {
                "versions.$": "$.ProjectVersionDescriptions",
                "count.$": "States.ArrayLength($.ProjectVersionDescriptions)",
            },
            "ResultPath": "$.described",
            "Retry": _retry(),
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "TimedOut"}],
            "Next": "VersionFound",
        },
        "VersionFound": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.described.count", "NumericEquals": 0, "Next": "VersionMissing"}],
            "Default": "PickVersion",
        },
        "VersionMissing": {
            "Type": "Pass",
            "Parameters": {
                "Error": "VersionNotFound",
                "Cause.$": "States.Format('DescribeProjectVersions no longer lists version {} of project {}: "
                "it was deleted', $.version_name, $.project)",
            },
            "ResultPath": "$.error",
            "Next": "TimedOut",
        },
        # Select the element, then branch on .Status (a path ending in [0].Status is not reliably
        # unwrapped by every interpreter).
        "PickVersion": {
            "Type": "Pass",
            "Parameters": {"version.$": "$.described.versions[0]"},
            "ResultPath": "$.describe",
            "Next": "Evaluate",
        },
        "Evaluate": {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.action", "StringEquals": TRANSITION_START},
                        {"Variable": "$.describe.version.Status", "StringEquals": "RUNNING"},
                    ],
                    "Next": "RecordRunning",
                },
                {
                    "And": [
                        {"Variable": "$.action", "StringEquals": TRANSITION_START},
                        {"Variable": "$.describe.version.Status", "StringEquals": "FAILED"},
                    ],
                    "Next": "StartFailedEvent",
                },
                {
                    "And": [
                        {"Variable": "$.action", "StringEquals": TRANSITION_STOP},
                        {"Variable": "$.describe.version.Status", "StringEquals": "STOPPED"},
                    ],
                    "Next": "RecordStopped",
                },
                {
                    "Variable": "$.poll.count",
                    "NumericGreaterThanEqualsPath": "$.max_polls",
                    "Next": "TimedOut",
                },
            ],
            "Default": "CountPoll",
        },
        "CountPoll": {
            "Type": "Pass",
            "Parameters": {"count.$": "States.MathAdd($.poll.count, 1)"},
            "ResultPath": "$.poll",
            "Next": "WaitForStatus",
        },
        "TimedOut": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.action", "StringEquals": TRANSITION_START, "Next": "StartFailedEvent"}
            ],
            "Default": "StopFailedEvent",
        },
        "RecordRunning": _record("StampRunning", None, "RUNNING", reset_attempts=True),
        **dict(_ledger("RUNNING", "RunningEvent")),
        "RunningEvent": _event(EVENT_MODEL_RUNNING, "PublishRunning", "the model is RUNNING"),
        "PublishRunning": _publish(EVENT_MODEL_RUNNING, "Running"),
        "Running": {"Type": "Succeed"},
        "RecordStopped": _record("StampStopped", None, "STOPPED", reset_attempts=False),
        **dict(_ledger("STOPPED", "StoppedEvent")),
        "StoppedEvent": _event(EVENT_MODEL_STOPPED, "PublishStopped", "the model is STOPPED"),
        "PublishStopped": _publish(EVENT_MODEL_STOPPED, "Stopped"),
        "Stopped": {"Type": "Succeed"},
        "StartFailedEvent": _event(
            EVENT_MODEL_START_FAILED, "RecordStartFailed", "the start ended FAILED, was refused or timed out"
        ),
        "RecordStartFailed": _record("PublishStartFailed", "$.describe.version.Status", None, False),
        "PublishStartFailed": _publish(EVENT_MODEL_START_FAILED, "StartFailed"),
        "StartFailed": {
            "Type": "Fail",
            "Error": "ModelStartFailed",
            "Cause": "see the model.start_failed event",
        },
        "StopFailedEvent": _event(
            EVENT_MODEL_STOP_FAILED, "RecordStopFailed", "the stop was refused or timed out"
        ),
        "RecordStopFailed": _record("PublishStopFailed", "$.describe.version.Status", None, False),
        "PublishStopFailed": _publish(EVENT_MODEL_STOP_FAILED, "StopFailed"),
        "StopFailed": {
            "Type": "Fail",
            "Error": "ModelStopFailed",
            "Cause": "see the model.stop_failed event",
        },
    }
    return {
        "Comment": "Starts or stops one Custom Labels model version and waits for the outcome",
        "StartAt": "InitPolls",
        "TimeoutSeconds": TRANSITION_TIMEOUT_SECONDS + LOCK_MARGIN_SECONDS,
        "States": states,
    }


def render_definition(state_table: str, lifecycle_topic_arn: str) -> str:
    """The definition with its substitutions applied (what the offline runs create)."""
    text = json.dumps(model_control_definition())
    return text.replace("${" + STATE_TABLE_TOKEN + "}", state_table).replace(
        "${" + LIFECYCLE_TOPIC_TOKEN + "}", lifecycle_topic_arn
    )


class Serving(AppConstruct):
    def __init__(self, scope: Construct, construct_id: str, **app: Unpack[AppScope]) -> None:
        super().__init__(scope, construct_id, **app)
        settings, storage, notifications, stack = self.settings, self.storage, self.notifications, self.stack
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
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["rekognition:StartProjectVersion", "rekognition:StopProjectVersion"],
                resources=[_version_arns(stack, name) for name in served] or [_version_arns(stack, "none")],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["rekognition:DescribeProjectVersions"],
                resources=[_project_arns(stack, name) for name in served] or [_project_arns(stack, "none")],
            )
        )
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
        self.controller = AutopilotFunction(
            self,
            "Controller",
            handler="lambdas.serving.controller.handle",
            service_name=SERVICE_MODEL_CONTROLLER,
            description="the model controller: starts and stops Custom Labels models on demand",
            environment=ControllerEnvironment.variables(
                state_table=storage.state_table.table_name,
                lifecycle_topic=notifications.lifecycle_topic.topic_arn,
                state_machine_arn=self.state_machine.state_machine_arn,
                settings_parameter=storage.settings_parameter.parameter_name,
            ),
            timeout=Duration.seconds(60),
            memory_size=256,
        )
        controller_role = self.controller.role
        storage.state_table.grant_read_write_data(controller_role)
        storage.settings_parameter.grant_read(controller_role)
        notifications.lifecycle_topic.grant_publish(controller_role)
        self.state_machine.grant_start_execution(controller_role)
        controller_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["rekognition:DescribeProjectVersions"],
                resources=[_project_arns(stack, name) for name in served] or [_project_arns(stack, "none")],
            )
        )
        # DescribeProjects supports no resource-level permissions.
        controller_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["rekognition:DescribeProjects"], resources=["*"])
        )
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
        self.functions = [self.controller]
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
        self.rule = events.Rule(
            self,
            "ControlRequested",
            description="On-demand model control requests (CLI, detection)",
            event_pattern=events.EventPattern(
                source=[EVENT_SOURCE], detail_type=[DETAIL_TYPE_MODEL_CONTROL_REQUESTED]
            ),
            targets=[
                events_targets.LambdaFunction(
                    self.controller.function,
                    dead_letter_queue=self.dlq,
                    retry_attempts=2,
                    max_event_age=Duration.minutes(15),
                )
            ],
        )


def _version_arns(stack: Stack, project: str) -> str:
    return stack.format_arn(service="rekognition", resource="project", resource_name=f"{project}/version/*")


def _project_arns(stack: Stack, project: str) -> str:
    return stack.format_arn(service="rekognition", resource="project", resource_name=f"{project}/*")


def _nag_arn(resource: str) -> str:
    """An ARN as cdk-nag prints it in finding ids."""
    return f"arn:<AWS::Partition>:rekognition:<AWS::Region>:<AWS::AccountId>:{resource}"


def _logical_ref(function: AutopilotFunction) -> str:
    stack = Stack.of(function)
    return stack.get_logical_id(function.function.node.default_child)  # type: ignore[arg-type]
