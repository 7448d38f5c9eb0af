"""The training workflow's failure exits that need the engine to misbehave: a split that fails
(SPLIT_FAILED) or does not complete within its polling budget (SPLIT_TIMEOUT), and a new version
that does not reach RUNNING within its budget during a blue/green switch (START_TIMEOUT).

Each ends in a failed execution, a `training.failed` event naming the error, and production
untouched. Nothing depends on timing: the engine is made to fail (fault injection) or to take
far longer than the budget (its simulated durations raised for the test).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from lambdas.common.constants import EVENT_TRAINING_FAILED
from tests.integration.test_training_flows import Harness, _execution, run_with_budget
from tests.integration.test_training_flows import harness as harness  # the module's own stack

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("training-flows")]

A_DAY = 86_400.0


@pytest.fixture
def slow_engine(harness: Harness) -> Iterator[Any]:
    """Lets a test raise the engine's simulated durations; restores them afterwards."""
    engine = harness.engine.server.engine
    original = engine.config

    def slower(**durations: float) -> None:
        engine.config = dataclasses.replace(original, **durations)

    yield slower
    engine.config = original
    harness.engine.faults.clear()


def failed_error(harness: Harness, project: str) -> str:
    return str(harness.wait_for_event(project, EVENT_TRAINING_FAILED)["detail"]["error"])


def test_a_failed_split_ends_the_training_as_split_failed(harness: Harness, slow_engine: Any) -> None:
    # Given a project with an empty TEST dataset, and the service failing the distribution
    project = "tr-failed"
    harness.create_project(project, test_per_label=0)
    harness.engine.faults.fail_dataset_update(project=project, message="distribution failed (injected)")
    # When the training runs
    result = run_with_budget(harness, project, poll_seconds=0)
    # Then it fails as SPLIT_FAILED before any version is created
    assert result.status == "FAILED"
    assert result.cause.startswith("splitting TRAIN into TEST failed: TRAIN UPDATE_FAILED")
    assert harness.production(project) is None
    assert "CreateProjectVersion" not in result.states_entered()
    assert failed_error(harness, project) == "SPLIT_FAILED"


def test_a_split_that_outlasts_its_budget_ends_as_split_timeout(harness: Harness, slow_engine: Any) -> None:
    # Given a project with an empty TEST dataset, and a distribution that takes a day
    project = "tr-preflight"
    harness.create_project(project, test_per_label=0)
    slow_engine(dataset_update_seconds=A_DAY / harness.engine.config.time_scale)
    # When the training runs with a budget of two status checks
    result = run_with_budget(harness, project, poll_seconds=0, max_split_polls=2)
    # Then it fails as SPLIT_TIMEOUT
    assert result.status == "FAILED"
    assert result.cause == "splitting TRAIN into TEST did not complete in time"
    assert "CreateProjectVersion" not in result.states_entered()
    assert failed_error(harness, project) == "SPLIT_TIMEOUT"


def test_a_new_version_that_never_reaches_running_ends_as_start_timeout(
    harness: Harness, slow_engine: Any
) -> None:
    # Given a promoted version that is serving, and a next version the gate would promote
    project = "tr-bluegreen"
    project_arn = harness.create_project(project)
    assert _execution(harness, project).output["outcome"] == "PROMOTED"
    old = harness.production(project)
    assert old is not None
    harness.rekognition.start_project_version(ProjectVersionArn=old.version_arn, MinInferenceUnits=1)
    harness.wait_version(project_arn, old.version_name, "RUNNING")
    harness.set_production(dataclasses.replace(old, f1_score=0.1))
    # When starting the new version takes a day and the budget is two status checks
    slow_engine(start_seconds=A_DAY / harness.engine.config.time_scale)
    result = run_with_budget(harness, project, poll_seconds=1, model_poll_seconds=0, max_model_polls=2)
    # Then the training fails as START_TIMEOUT, naming the last status, and the old version serves on
    assert result.status == "FAILED"
    assert result.cause == "the new version did not reach RUNNING (last status STARTING)"
    assert "Promote" not in result.states_entered()
    current = harness.production(project)
    assert current is not None and current.version_arn == old.version_arn
    assert harness.versions(project_arn)[old.version_name]["Status"] == "RUNNING"
    assert failed_error(harness, project) == "START_TIMEOUT"
    harness.rekognition.stop_project_version(ProjectVersionArn=old.version_arn)
