"""Builders of the training definition's states (infra/workflows/training.py): Rekognition and
Lambda tasks with their retries, the failure-report routing, version listing and picking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from infra.step_functions_errors import busy_errors, transient_errors
from infra.workflows.asl import LAMBDA_SERVICE_ERRORS, Path, bounded_poll, catch, parameters, retry, sdk
from lambdas.common.contracts import checked_fields
from lambdas.training.contracts import state_path

REPORT = "ReportFailureTask"
SNS_RETRY = {
    "ErrorEquals": ["SNS.SdkClientException", "SNS.InternalErrorException", "SNS.ThrottledException"]
}
# DescribeProjectVersions of one name: the list and its length. The list is empty once the version
# is gone (deleted, or its project); selecting element [0] of an empty list raises States.Runtime,
# which no Catch catches, so the list is counted first and a Choice picks the element or fails.
LISTED_VERSIONS = {
    "versions.$": "$.ProjectVersionDescriptions",
    "count.$": "States.ArrayLength($.ProjectVersionDescriptions)",
}


@dataclass(frozen=True)
class TrainingTargets:
    """What the definition calls: the step functions' ARNs, the output bucket and the topic."""

    bucket_name: str
    topic_arn: str
    preflight: str
    gate: str
    promote: str
    retention: str
    finish: str
    failure: str


def read(*names: str) -> Path:
    """A value read from the training state at the field path `names` (checked at synth)."""
    return Path(state_path(*names))


def guarded(state: dict[str, Any]) -> dict[str, Any]:
    """Any error of the task goes to the failure report, kept under $.error."""
    return {**state, "Catch": [catch(REPORT, state_path("error"))]}


def rekognition(
    action: str,
    arguments: dict[str, Any],
    next_state: str,
    *,
    selector: dict[str, Any] | None = None,
    result_path: str | None = None,
    busy: bool = False,
    comment: str | None = None,
) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Task", "Resource": sdk("rekognition", action)}
    if comment:
        state["Comment"] = comment
    state["Parameters"] = parameters(arguments)
    if selector:
        state["ResultSelector"] = selector
    state["ResultPath"] = result_path
    state["Retry"] = [retry(transient_errors(), 5, 5, jitter=True)]
    if busy:
        # A dataset update started after the trigger looked (ingestion): wait for it, bounded.
        state["Retry"].append(retry(busy_errors(), 60, 5))
    state["Next"] = next_state
    return state


def invoke(
    function_arn: str,
    request: type[BaseModel],
    payload: dict[str, Any],
    result_path: str,
    next_state: str,
    *,
    retry_all: bool = False,
) -> dict[str, Any]:
    """A Lambda step: its payload checked against the step's request model."""
    retries = [retry(LAMBDA_SERVICE_ERRORS, 2, 6)]
    if retry_all:
        retries.append(retry(["States.ALL"], 2, 3, backoff=None))
    return {
        "Type": "Task",
        "Resource": function_arn,
        "Parameters": parameters(checked_fields(request, payload)),
        "ResultPath": result_path,
        "Retry": retries,
        "Next": next_state,
    }


def fail_with(error: str, next_state: str = REPORT) -> dict[str, Any]:
    return {
        "Type": "Pass",
        "Result": {"Error": error, "Cause": error},
        "ResultPath": state_path("error"),
        "Next": next_state,
    }


def version_vanished(while_: str) -> dict[str, Any]:
    """The error the failure report turns into training.failed when the version is no longer listed."""
    return {
        "Type": "Pass",
        "Parameters": {
            "Error": "VERSION_NOT_FOUND",
            "Cause.$": "States.Format('DescribeProjectVersions no longer lists version {} of project {}: "
            f"it was deleted while {while_}', {state_path('version_name')}, {state_path('project')})",
        },
        "ResultPath": state_path("error"),
        "Next": REPORT,
    }


def version_listed(listed: str, vanished: str, pick: str) -> dict[str, Any]:
    return {
        "Type": "Choice",
        "Choices": [{"Variable": state_path(listed, "count"), "NumericEquals": 0, "Next": vanished}],
        "Default": pick,
    }


def pick_version(listed: str, next_state: str) -> dict[str, Any]:
    """Keeps the one listed version as `<listed>.version`; reached only when the list is not empty."""
    return {
        "Type": "Pass",
        "Parameters": {"version.$": f"{state_path(listed, 'versions')}[0]"},
        "ResultPath": state_path(listed),
        "Next": next_state,
    }


def status_is(listed: str, status: str, next_state: str) -> dict[str, Any]:
    return {"Variable": state_path(listed, "version", "Status"), "StringEquals": status, "Next": next_state}


@dataclass(frozen=True)
class VersionPollNames:
    """State names of one poll of a version's status (kept: they show in the execution history)."""

    describe: str
    listed: str
    vanished: str
    pick: str
    decide: str
    failed: str
    timeout: str
    wait: str | None = None


def version_poll(
    loop: str,
    *,
    listed: str,
    seconds: str,
    limit: str,
    names: VersionPollNames,
    while_: str,
    done: tuple[str, str],
    failed: tuple[str, str],
    timed_out: str,
) -> dict[str, dict[str, Any]]:
    """A bounded poll of DescribeProjectVersions until the version reaches `done` (status, next
    state) or `failed` (status, error), kept at `<listed>`; the version no longer listed, a
    failed status and an exhausted budget all go to the failure report."""
    return {
        **bounded_poll(
            loop,
            counter=state_path("polls"),
            seconds_path=seconds,
            limit_path=limit,
            check=names.describe,
            on_exhausted=names.timeout,
            wait=names.wait,
        ),
        names.describe: guarded(
            rekognition(
                "describeProjectVersions",
                {
                    "ProjectArn": read("project_arn"),
                    "VersionNames": Path(f"States.Array({state_path('version_name')})"),
                },
                names.listed,
                selector=LISTED_VERSIONS,
                result_path=state_path(listed),
            )
        ),
        names.listed: version_listed(listed, names.vanished, names.pick),
        names.vanished: version_vanished(while_),
        names.pick: pick_version(listed, names.decide),
        names.decide: {
            "Type": "Choice",
            "Choices": [status_is(listed, done[0], done[1]), status_is(listed, failed[0], names.failed)],
            "Default": f"Count{loop}Poll",
        },
        names.failed: fail_with(failed[1]),
        names.timeout: fail_with(timed_out),
    }
