"""The controller and the real start/stop state machine on the local engine: serving windows,
FAILED starts retried within the bound, manual overrides, lifecycle events."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import boto3
import pytest

from lambdas.common.settings import ServingWindow
from tests.integration.serving_support import fast_settings, lifecycle_types, offline_world

# The fake clock starts on a Monday at 10:00 UTC.
MONDAY_MORNING = ServingWindow(cron="0 10 ? * MON *", minutes=30)


@pytest.mark.slow
def test_serving_window_runs_the_model_only_inside_the_window(monkeypatch: Any) -> None:
    # (with auto-scaling configured, the state machine's StartProjectVersion sends MaxInferenceUnits)
    settings = fast_settings(serving_windows=(MONDAY_MORNING,), min_inference_units=1, max_inference_units=2)
    with offline_world(monkeypatch, settings, {"digits": "CUSTOM_LABELS"}) as world:
        stack = world.stack
        # Given the window opens now, with no work at all, the tick starts the model
        assert stack.tick("digits")["action"] == "START"
        assert stack.wait_transition("digits") == "RUNNING"
        version = world.engine.client().describe_project_versions(
            ProjectArn=_project_arn(world), VersionNames=["v1"]
        )["ProjectVersionDescriptions"][0]
        assert (version["MinInferenceUnits"], version["MaxInferenceUnits"]) == (1, 2)
        # While inside the window it stays up
        stack.clock.advance(29 * 60)
        inside = stack.tick("digits")
        assert (inside["action"], inside["reason"]) == ("NONE", "inside a serving window")
        assert inside["running_minutes"] == 1.0
        # At the window's end the next tick stops it
        stack.clock.advance(60)
        assert stack.tick("digits")["action"] == "STOP"
        assert stack.wait_transition("digits") == "STOPPED"
        # (the state machine publishes after releasing the lock, so the order between a state machine's
        # event and the controller's next one is not fixed)
        assert Counter(lifecycle_types(stack, "digits", expected=4)) == Counter(
            ["model.starting", "model.running", "model.stopping", "model.stopped"]
        )


@pytest.mark.slow
def test_failed_start_is_retried_once_then_given_up(monkeypatch: Any) -> None:
    # start_retry_limit=1: one start plus one retry
    with offline_world(monkeypatch, fast_settings(start_retry_limit=1), {"digits": "CUSTOM_LABELS"}) as world:
        stack = world.stack
        world.engine.faults.fail_start(count=2, project="digits")
        # Given a manual start request
        assert stack.request("digits", "start", override_minutes=30)["action"] == "START"
        # The start ends FAILED: the state machine records it and releases the lock
        assert stack.wait_transition("digits") == "FAILED"
        assert stack.serving_item("digits")["start_attempts"]["N"] == "1"
        # The next tick retries
        retry = stack.tick("digits")
        assert retry["action"] == "START", retry
        assert stack.wait_transition("digits") == "FAILED"
        # and then it gives up instead of starting forever
        given_up = stack.tick("digits")
        assert given_up["action"] == "NONE"
        assert "start failed 2 times" in given_up["reason"]
        events = lifecycle_types(stack, "digits", expected=5)
        assert Counter(events) == Counter(
            {"model.starting": 2, "model.start_failed": 2, "model.start_abandoned": 1}
        )
        # and says so only once
        assert stack.tick("digits")["action"] == "NONE"
        assert lifecycle_types(stack, "digits", expected=1, timeout=2) == []


@pytest.mark.slow
def test_failed_start_recovers_on_retry_and_stop_override_wins(monkeypatch: Any) -> None:
    with offline_world(monkeypatch, fast_settings(start_retry_limit=2), {"digits": "CUSTOM_LABELS"}) as world:
        stack = world.stack
        world.engine.faults.fail_start(count=1, project="digits")
        stack.request("digits", "start", override_minutes=30)
        assert stack.wait_transition("digits") == "FAILED"
        assert stack.tick("digits")["action"] == "START"
        assert stack.wait_transition("digits") == "RUNNING"
        # attempts are reset once RUNNING
        assert stack.serving_item("digits")["start_attempts"]["N"] == "0"
        # A manual stop overrides the start override at once
        assert stack.request("digits", "stop", override_minutes=10)["action"] == "STOP"
        assert stack.wait_transition("digits") == "STOPPED"
        # and "auto" hands control back: nothing wants the model, so it stays stopped
        assert stack.request("digits", "auto")["desired"] == "STOPPED"
        events = lifecycle_types(stack, "digits", expected=6)
        assert Counter(events) == Counter(
            {
                "model.starting": 2,
                "model.start_failed": 1,
                "model.running": 1,
                "model.stopping": 1,
                "model.stopped": 1,
            }
        )


def _project_arn(world: Any) -> str:
    projects = world.engine.client().describe_projects(ProjectNames=["digits"])["ProjectDescriptions"]
    return str(projects[0]["ProjectArn"])


@pytest.mark.slow
def test_state_machine_reports_a_version_that_disappeared(monkeypatch: Any) -> None:
    with offline_world(monkeypatch, fast_settings(), {}) as world:
        stack = world.stack
        project_arn = world.engine.client().create_project(ProjectName="digits")["ProjectArn"]
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        # Given a stop of a version the project does not (or no longer) list
        execution = sfn.start_execution(
            stateMachineArn=stack.state_machine_arn,
            input=json.dumps(
                {
                    "project": "digits",
                    "action": "STOP",
                    "project_arn": project_arn,
                    "version_arn": f"{project_arn.rsplit('/', 1)[0]}/version/gone/1",
                    "version_name": "gone",
                    "min_inference_units": 1,
                    "max_inference_units": None,
                    "poll_seconds": 1,
                    "max_polls": 3,
                    "attempt": 0,
                }
            ),
        )["executionArn"]
        # Then the execution ends failed (no endless polling) and the failure is published
        deadline = time.monotonic() + 30
        while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
            assert time.monotonic() < deadline, "execution still running"
            time.sleep(0.1)
        assert sfn.describe_execution(executionArn=execution)["status"] == "FAILED"
        [envelope] = stack.drain(stack.lifecycle_inbox)
        event = json.loads(envelope["Message"])
        assert event["type"] == "model.stop_failed"
        # (the name AWS raises: the local runtime names aws-sdk task errors as Step Functions does)
        assert event["detail"]["error"]["Error"] in (
            "VersionNotFound",
            "Rekognition.ResourceNotFoundException",
        )


@pytest.mark.slow
def test_a_version_that_vanishes_while_starting_ends_in_a_notified_start_failure(monkeypatch: Any) -> None:
    with offline_world(monkeypatch, fast_settings(), {"digits": "CUSTOM_LABELS"}) as world:
        stack = world.stack
        project_arn = _project_arn(world)
        version_arn = world.versions["digits"]
        version_name = version_arn.rsplit("/", 2)[-2]
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        # Given a start of the production version, polled every 3 s
        execution = sfn.start_execution(
            stateMachineArn=stack.state_machine_arn,
            input=json.dumps(
                {
                    "project": "digits",
                    "action": "START",
                    "project_arn": project_arn,
                    "version_arn": version_arn,
                    "version_name": version_name,
                    "min_inference_units": 1,
                    "max_inference_units": None,
                    "poll_seconds": 3,
                    "max_polls": 3,
                    "attempt": 0,
                }
            ),
        )["executionArn"]
        # When the version disappears from the service while it starts (the engine forgets it, as
        # DescribeProjectVersions answers after a deletion: an empty list)
        engine = world.engine.server.engine
        deadline = time.monotonic() + 30
        removed = False
        while not removed and time.monotonic() < deadline:
            with engine.lock:
                versions = engine.projects[("us-east-1", "digits")].versions
                if versions[version_name].status == "STARTING":
                    removed = versions.pop(version_name) is not None
            time.sleep(0.01)
        assert removed, "StartProjectVersion never ran"
        while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
            assert time.monotonic() < deadline, "execution still running"
            time.sleep(0.1)
        # Then the execution ends in the notified failure path, not in an uncaught States.Runtime
        described = sfn.describe_execution(executionArn=execution)
        assert (described["status"], described.get("error")) == ("FAILED", "ModelStartFailed")
        [envelope] = stack.drain(stack.lifecycle_inbox)
        event = json.loads(envelope["Message"])
        assert event["type"] == "model.start_failed"
        assert event["detail"]["error"] == {
            "Error": "VersionNotFound",
            "Cause": f"DescribeProjectVersions no longer lists version {version_name} of project digits: "
            "it was deleted",
        }
