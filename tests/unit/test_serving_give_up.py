"""Giving up on a model that keeps failing to start: one model.start_abandoned event (attempts and
the version's last StatusMessage), and the attempt count reset once nothing wants the model.

The SERVING item lives in moto DynamoDB; DescribeProjectVersions is answered by botocore Stubber.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lambdas.common.settings import ProjectSettings
from lambdas.serving.control import ControllerDeps, control_project
from lambdas.serving.gateways import RekognitionModels, ServingTarget
from lambdas.serving.state import ServingStore
from tests.unit.conftest import STATE_TABLE

NOW = 1_795_428_000.0  # Monday 10:00 UTC
TARGET = ServingTarget(
    project="digits",
    project_arn="arn:aws:rekognition:us-east-1:123456789012:project/digits/1",
    version_arn="arn:aws:rekognition:us-east-1:123456789012:project/digits/version/v1/2",
    version_name="v1",
)
SETTINGS = ProjectSettings(start_retry_limit=2, idle_minutes=15)
FAILURE = "The model could not be started: not enough capacity in the Region."


@dataclass
class Queue:
    depth: int

    def backlog(self) -> int:
        return self.depth


@dataclass
class Starter:
    started: list[dict[str, Any]] = field(default_factory=list)

    def start(self, name: str, payload: dict[str, Any]) -> str:
        self.started.append(payload)
        return f"arn:aws:states:us-east-1:123456789012:execution:model-control:{name}"


@dataclass
class Publisher:
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def publish(self, event_type: str, project: str, **detail: Any) -> dict[str, Any]:
        self.events.append((event_type, project, detail))
        return {}


def failed_version(stub: Stubber, times: int) -> None:
    for _ in range(times):
        stub.add_response(
            "describe_project_versions",
            {
                "ProjectVersionDescriptions": [
                    {"ProjectVersionArn": TARGET.version_arn, "Status": "FAILED", "StatusMessage": FAILURE}
                ]
            },
            {"ProjectArn": TARGET.project_arn, "VersionNames": ["v1"]},
        )


@pytest.fixture
def store(state_table: Any) -> ServingStore:
    return ServingStore(STATE_TABLE, state_table)


def tick(store: ServingStore, models: RekognitionModels, depth: int) -> tuple[Publisher, Starter]:
    publisher, starter = Publisher(), Starter()
    deps = ControllerDeps(
        store=store,
        models=models,
        queue=Queue(depth),  # type: ignore[arg-type]
        starter=starter,  # type: ignore[arg-type]
        publisher=publisher,  # type: ignore[arg-type]
        target=lambda project: TARGET,
    )
    control_project("digits", SETTINGS, now=NOW, deps=deps, controller_rate_minutes=1)
    return publisher, starter


def failed_three_times(store: ServingStore) -> None:
    """Three starts made (1 + start_retry_limit 2), the last one ended FAILED, images wait."""
    store.acquire_transition("digits", "START", now=NOW - 600, expires_at=NOW - 300, attempts=3)
    store.release_transition("digits")
    store.record_deferral("digits", NOW - 30)


def test_giving_up_publishes_start_abandoned_once_with_attempts_and_status_message(
    store: ServingStore,
) -> None:
    # Given a model whose third start ended FAILED while images still wait
    failed_three_times(store)
    client = boto3.client("rekognition", region_name="us-east-1")
    models = RekognitionModels(client)
    with Stubber(client) as stub:
        failed_version(stub, 3)  # status, status message; status of the second tick
        # When the controller runs twice
        first, first_starts = tick(store, models, depth=4)
        second, second_starts = tick(store, models, depth=4)
        stub.assert_no_pending_responses()
    # Then it started nothing, and announced once that it gave up, with the attempts and the reason
    assert first_starts.started == [] and second_starts.started == []
    [(event_type, project, detail)] = first.events
    assert (event_type, project) == ("model.start_abandoned", "digits")
    assert detail["attempts"] == 3
    assert detail["status_message"] == FAILURE
    assert detail["version_arn"] == TARGET.version_arn
    assert second.events == []
    assert store.load("digits").start_attempts == 3


def test_attempts_reset_once_nothing_wants_the_model_and_a_new_give_up_is_announced(
    store: ServingStore,
) -> None:
    failed_three_times(store)
    client = boto3.client("rekognition", region_name="us-east-1")
    models = RekognitionModels(client)
    with Stubber(client) as stub:
        failed_version(stub, 2)
        given_up, _ = tick(store, models, depth=4)
        # When the queue is empty and the deferral has expired: nothing wants the model
        failed_version(stub, 1)
        publisher, starter = tick_later(store, models, depth=0)
        stub.assert_no_pending_responses()
    assert [e[0] for e in given_up.events] == ["model.start_abandoned"]
    # Then the attempt count is back to 0 and nothing was started or announced
    assert store.load("digits").start_attempts == 0
    assert (publisher.events, starter.started) == ([], [])
    # And after three more failed starts, giving up is announced again
    failed_three_times(store)
    with Stubber(client) as stub:
        failed_version(stub, 2)
        again, _ = tick(store, models, depth=4)
    assert [e[0] for e in again.events] == ["model.start_abandoned"]


def test_a_failed_model_within_the_retry_limit_is_started_again(store: ServingStore) -> None:
    store.acquire_transition("digits", "START", now=NOW - 600, expires_at=NOW - 300, attempts=2)
    store.release_transition("digits")
    store.record_deferral("digits", NOW - 30)
    client = boto3.client("rekognition", region_name="us-east-1")
    with Stubber(client) as stub:
        failed_version(stub, 1)
        publisher, starter = tick(store, RekognitionModels(client), depth=4)
    assert [p["attempt"] for p in starter.started] == [3]
    assert [e[0] for e in publisher.events] == ["model.starting"]


def tick_later(store: ServingStore, models: RekognitionModels, depth: int) -> tuple[Publisher, Starter]:
    """A tick an hour later, with no detection and no serving window."""
    publisher, starter = Publisher(), Starter()
    deps = ControllerDeps(
        store=store,
        models=models,
        queue=Queue(depth),  # type: ignore[arg-type]
        starter=starter,  # type: ignore[arg-type]
        publisher=publisher,  # type: ignore[arg-type]
        target=lambda project: TARGET,
    )
    control_project("digits", SETTINGS, now=NOW + 3600, deps=deps, controller_rate_minutes=1)
    return publisher, starter
