"""Small builders of Amazon States Language shared by both workflow definitions.

`Path` marks a value that Step Functions reads from the state (a JSONPath or an intrinsic
function); `parameters` turns a dict holding such values into ASL Parameters ("key.$": path).
"""

from __future__ import annotations

from typing import Any

from lambdas.common.constants import ATTR_EVENT_TYPE, ATTR_PROJECT
from lambdas.common.events import lifecycle_envelope

ENTERED_TIME = "$$.State.EnteredTime"
SNS_PUBLISH = "arn:aws:states:::sns:publish"
# Lambda's own service errors, retried on every Lambda task (CDK's "retry on service exceptions").
LAMBDA_SERVICE_ERRORS = (
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
)


class Path(str):
    """A value Step Functions reads from the state: emitted under "<key>.$"."""


def parameters(value: Any) -> Any:
    """A dict (nested) whose `Path` values become "<key>.$" entries; other values stay as they are."""
    if isinstance(value, dict):
        return {
            (f"{key}.$" if isinstance(item, Path) else key): (
                str(item) if isinstance(item, Path) else parameters(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [parameters(item) for item in value]
    return value


def sdk(service: str, action: str) -> str:
    return f"arn:aws:states:::aws-sdk:{service}:{action}"


def retry(
    errors: list[str] | tuple[str, ...],
    interval: int,
    attempts: int,
    backoff: float | None = 2.0,
    jitter: bool = False,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"ErrorEquals": list(errors), "IntervalSeconds": interval, "MaxAttempts": attempts}
    if backoff is not None:
        rule["BackoffRate"] = backoff
    if jitter:
        rule["JitterStrategy"] = "FULL"
    return rule


def catch(next_state: str, result_path: str, errors: tuple[str, ...] = ("States.ALL",)) -> dict[str, Any]:
    return {"ErrorEquals": list(errors), "ResultPath": result_path, "Next": next_state}


def lifecycle_message(event_type: str, project: str, detail: dict[str, Any]) -> dict[str, Any]:
    """The lifecycle envelope (lambdas.common.events) with `project` and the state's entered time
    read from the state."""
    return parameters(lifecycle_envelope(event_type, Path(project), Path(ENTERED_TIME), detail))


def publish_lifecycle(
    event_type: str,
    *,
    topic_arn: str,
    project: str,
    message: dict[str, Any] | str,
    next_state: str,
    retries: list[dict[str, Any]],
    catches: list[dict[str, Any]] | None = None,
    subject: str | None = None,
) -> dict[str, Any]:
    """An SNS Publish task of one lifecycle event, with the attributes subscribers filter on.

    `message` is the envelope itself (see lifecycle_message) or a path to one kept in the state.
    """
    body: dict[str, Any] = {"TopicArn": topic_arn}
    if subject is not None:
        body["Subject.$"] = subject
    if isinstance(message, str):
        body["Message.$"] = f"States.JsonToString({message})"
    else:
        body["Message"] = message
    body["MessageAttributes"] = {
        ATTR_EVENT_TYPE: {"DataType": "String", "StringValue": event_type},
        ATTR_PROJECT: {"DataType": "String", "StringValue.$": project},
    }
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": SNS_PUBLISH,
        "Parameters": body,
        "ResultPath": None,
        "Retry": retries,
        "Next": next_state,
    }
    if catches:
        state["Catch"] = catches
    return state


def count_poll(counter: str, next_state: str) -> dict[str, Any]:
    """A Pass that adds one to `<counter>.count`."""
    return {
        "Type": "Pass",
        "Parameters": {"count.$": f"States.MathAdd({counter}.count, 1)"},
        "ResultPath": counter,
        "Next": next_state,
    }


def bounded_poll(
    name: str,
    *,
    counter: str,
    seconds_path: str,
    limit_path: str,
    check: str,
    on_exhausted: str,
    wait: str | None = None,
) -> dict[str, dict[str, Any]]:
    """The states of one bounded poll loop: Init<name>Polls -> Wait<name> -> `check` (the caller's
    states, which end in Count<name>Poll while still waiting) -> <name>PollsLeft? -> Wait<name>,
    or `on_exhausted` once the counter reaches the limit read from the input."""
    wait, count, left = wait or f"Wait{name}", f"Count{name}Poll", f"{name}PollsLeft?"
    return {
        f"Init{name}Polls": {"Type": "Pass", "Result": {"count": 0}, "ResultPath": counter, "Next": wait},
        wait: {"Type": "Wait", "SecondsPath": seconds_path, "Next": check},
        count: count_poll(counter, left),
        left: {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": f"{counter}.count",
                    "NumericGreaterThanEqualsPath": limit_path,
                    "Next": on_exhausted,
                }
            ],
            "Default": wait,
        },
    }
