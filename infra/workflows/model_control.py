"""The model control (start/stop) state machine as Amazon States Language, built by
`model_control_definition()`.

Plain ASL with two substitutions (${StateTable}, ${LifecycleTopic}); the integration tests run
exactly this definition offline. It calls Rekognition, DynamoDB and SNS directly (no Lambda):
start or stop the version, then poll DescribeProjectVersions every `poll_seconds` (from the
input) at most `max_polls` times, record the outcome on the SERVING item (which also releases
the transition lock) and publish the lifecycle event. Every path into the state comes from
lambdas.serving.contracts.
"""

from __future__ import annotations

import json
from typing import Any

from infra.step_functions_errors import rekognition_error, transient_errors
from infra.workflows.asl import Path, count_poll, lifecycle_message, publish_lifecycle, retry, sdk
from lambdas.common.constants import (
    EVENT_MODEL_RUNNING,
    EVENT_MODEL_START_FAILED,
    EVENT_MODEL_STOP_FAILED,
    EVENT_MODEL_STOPPED,
    ITEM_SERVING,
    ITEM_USAGE_PREFIX,
    PROJECT_PK_PREFIX,
    STATE_PK,
    STATE_SK,
    STATE_TTL_ATTRIBUTE,
    TRANSITION_START,
    TRANSITION_STOP,
)
from lambdas.serving.contracts import control_path as _p
from lambdas.serving.policy import LOCK_MARGIN_SECONDS, TRANSITION_TIMEOUT_SECONDS

STATE_TABLE_TOKEN = "StateTable"
LIFECYCLE_TOPIC_TOKEN = "LifecycleTopic"
DEFINITION_SUBSTITUTIONS = (STATE_TABLE_TOKEN, LIFECYCLE_TOPIC_TOKEN)


def _sdk(action: str) -> str:
    return sdk("rekognition", action)


def _retry() -> list[dict[str, Any]]:
    return [retry(transient_errors(), 2, 4)]


# The partition key of the project's items in the state table, formatted from the input.
_PROJECT_KEY = {"S.$": f"States.Format('{PROJECT_PK_PREFIX}{{}}', {_p('project')})"}
_TABLE = "${" + STATE_TABLE_TOKEN + "}"


def _write_retry() -> list[dict[str, Any]]:
    """DynamoDB and SNS writes: a few quick retries of any error."""
    return [retry(["States.ALL"], 1, 3)]


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
            "TableName": _TABLE,
            "Key": {
                STATE_PK: _PROJECT_KEY,
                STATE_SK: {"S": ITEM_SERVING},
            },
            "UpdateExpression": "SET "
            + ", ".join(sets)
            + " REMOVE transition, transition_expires_at, execution_arn",
            "ExpressionAttributeValues": values,
        },
        "ResultPath": None,
        "Retry": _write_retry(),
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
                "ResultPath": _p("ledger"),
                "Next": write,
            },
        ),
        (
            write,
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::dynamodb:putItem",
                "Parameters": {
                    "TableName": _TABLE,
                    "Item": {
                        STATE_PK: _PROJECT_KEY,
                        STATE_SK: {
                            "S.$": f"States.Format('{ITEM_USAGE_PREFIX}{{}}#{status}', {_p('ledger', 'at')})"
                        },
                        "status": {"S": status},
                        "at": {"S.$": _p("ledger", "at")},
                        "version": {"S.$": _p("version_name")},
                        "reason": {"S.$": _p("reason")},
                        "units": {"N.$": f"States.Format('{{}}', {_p('min_inference_units')})"},
                        STATE_TTL_ATTRIBUTE: {"N.$": f"States.Format('{{}}', {_p('ledger_expires_at')})"},
                    },
                },
                "ResultPath": None,
                "Retry": _write_retry(),
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": _p("ledger_error"), "Next": next_state}
                ],
                "Next": next_state,
            },
        ),
    ]


def _event(event_type: str, next_state: str, reason: str) -> dict:
    """Builds the lifecycle message (lambdas.common.events.lifecycle_envelope) under $.event."""
    detail = {
        "version_arn": Path(_p("version_arn")),
        "attempt": Path(_p("attempt")),
        "execution_arn": Path("$$.Execution.Id"),
        "status": Path(_p("describe", "version", "Status")),
        "error": Path(_p("error")),
        "reason": reason,
    }
    return {
        "Type": "Pass",
        "Parameters": lifecycle_message(event_type, _p("project"), detail),
        "ResultPath": _p("event"),
        "Next": next_state,
    }


def _publish(event_type: str, next_state: str) -> dict:
    return publish_lifecycle(
        event_type,
        topic_arn="${" + LIFECYCLE_TOPIC_TOKEN + "}",
        project=_p("project"),
        subject=f"States.Format('[autopilot] {{}}: {event_type}', {_p('project')})",
        message=_p("event"),
        next_state=next_state,
        retries=_write_retry(),
    )


def _start_task(with_max: bool) -> dict:
    parameters = {"ProjectVersionArn.$": _p("version_arn"), "MinInferenceUnits.$": _p("min_inference_units")}
    if with_max:
        parameters["MaxInferenceUnits.$"] = _p("max_inference_units")
    return {
        "Type": "Task",
        "Resource": _sdk("startProjectVersion"),
        "Parameters": parameters,
        "ResultPath": None,
        "Retry": _retry(),
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": _p("error"), "Next": "StartRefused"}],
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
            "ResultPath": _p("poll"),
            "Next": "InitStatus",
        },
        "InitStatus": {
            "Type": "Pass",
            "Parameters": {"version": {"Status": "UNKNOWN"}},
            "ResultPath": _p("describe"),
            "Next": "InitError",
        },
        "InitError": {
            "Type": "Pass",
            "Parameters": {"Error": "none", "Cause": "none"},
            "ResultPath": _p("error"),
            "Next": "Route",
        },
        "Route": {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [
                        {"Variable": _p("action"), "StringEquals": TRANSITION_START},
                        {"Variable": _p("max_inference_units"), "IsPresent": True},
                        {"Not": {"Variable": _p("max_inference_units"), "IsNull": True}},
                    ],
                    "Next": "StartModelWithAutoScaling",
                },
                {"Variable": _p("action"), "StringEquals": TRANSITION_START, "Next": "StartModel"},
                {"Variable": _p("action"), "StringEquals": TRANSITION_STOP, "Next": "StopModel"},
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
            "Choices": [{"Variable": _p("error", "Error"), "StringEquals": in_use, "Next": "WaitForStatus"}],
            "Default": "StartFailedEvent",
        },
        "StopModel": {
            "Type": "Task",
            "Resource": _sdk("stopProjectVersion"),
            "Parameters": {"ProjectVersionArn.$": _p("version_arn")},
            "ResultPath": None,
            "Retry": _retry(),
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": _p("error"), "Next": "StopRefused"}],
            "Next": "WaitForStatus",
        },
        "StopRefused": {
            "Type": "Choice",
            "Choices": [{"Variable": _p("error", "Error"), "StringEquals": in_use, "Next": "WaitForStatus"}],
            "Default": "StopFailedEvent",
        },
        "WaitForStatus": {"Type": "Wait", "SecondsPath": _p("poll_seconds"), "Next": "DescribeVersion"},
        "DescribeVersion": {
            "Type": "Task",
            "Resource": _sdk("describeProjectVersions"),
            "Parameters": {
                "ProjectArn.$": _p("project_arn"),
                "VersionNames.$": f"States.Array({_p('version_name')})",
            },
            "ResultSelector": {
                "versions.$": "$.ProjectVersionDescriptions",
                "count.$": "States.ArrayLength($.ProjectVersionDescriptions)",
            },
            "ResultPath": _p("described"),
            "Retry": _retry(),
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": _p("error"), "Next": "TimedOut"}],
            "Next": "VersionFound",
        },
        "VersionFound": {
            "Type": "Choice",
            "Choices": [{"Variable": _p("described", "count"), "NumericEquals": 0, "Next": "VersionMissing"}],
            "Default": "PickVersion",
        },
        "VersionMissing": {
            "Type": "Pass",
            "Parameters": {
                "Error": "VersionNotFound",
                "Cause.$": "States.Format('DescribeProjectVersions no longer lists version {} of project {}: "
                f"it was deleted', {_p('version_name')}, {_p('project')})",
            },
            "ResultPath": _p("error"),
            "Next": "TimedOut",
        },
        # Select the element, then branch on .Status (a path ending in [0].Status is not reliably
        # unwrapped by every interpreter).
        "PickVersion": {
            "Type": "Pass",
            "Parameters": {"version.$": f"{_p('described', 'versions')}[0]"},
            "ResultPath": _p("describe"),
            "Next": "Evaluate",
        },
        "Evaluate": {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [
                        {"Variable": _p("action"), "StringEquals": TRANSITION_START},
                        {"Variable": _p("describe", "version", "Status"), "StringEquals": "RUNNING"},
                    ],
                    "Next": "RecordRunning",
                },
                {
                    "And": [
                        {"Variable": _p("action"), "StringEquals": TRANSITION_START},
                        {"Variable": _p("describe", "version", "Status"), "StringEquals": "FAILED"},
                    ],
                    "Next": "StartFailedEvent",
                },
                {
                    "And": [
                        {"Variable": _p("action"), "StringEquals": TRANSITION_STOP},
                        {"Variable": _p("describe", "version", "Status"), "StringEquals": "STOPPED"},
                    ],
                    "Next": "RecordStopped",
                },
                {
                    "Variable": _p("poll", "count"),
                    "NumericGreaterThanEqualsPath": _p("max_polls"),
                    "Next": "TimedOut",
                },
            ],
            "Default": "CountPoll",
        },
        "CountPoll": count_poll(_p("poll"), "WaitForStatus"),
        "TimedOut": {
            "Type": "Choice",
            "Choices": [
                {"Variable": _p("action"), "StringEquals": TRANSITION_START, "Next": "StartFailedEvent"}
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
        "RecordStartFailed": _record("PublishStartFailed", _p("describe", "version", "Status"), None, False),
        "PublishStartFailed": _publish(EVENT_MODEL_START_FAILED, "StartFailed"),
        "StartFailed": {
            "Type": "Fail",
            "Error": "ModelStartFailed",
            "Cause": "see the model.start_failed event",
        },
        "StopFailedEvent": _event(
            EVENT_MODEL_STOP_FAILED, "RecordStopFailed", "the stop was refused or timed out"
        ),
        "RecordStopFailed": _record("PublishStopFailed", _p("describe", "version", "Status"), None, False),
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
