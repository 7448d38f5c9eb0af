"""The guard handler's sweep with fakes for Rekognition and SNS and a moto state table."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from lambdas.common.constants import EVENT_GUARD_STOPPED, EVENT_GUARD_UNMANAGED_RUNNING
from lambdas.common.settings import AppSettings, GuardSettings, ProjectSettings
from lambdas.guard.gateways import GuardStore, project_name
from lambdas.guard.policy import RunningVersion
from lambdas.guard.sweep import GuardDeps, run_sweep
from lambdas.serving.gateways import QueueBacklog
from lambdas.serving.state import ServingStore
from lambdas.training.state import TrainingStateStore
from tests.unit.conftest import STATE_TABLE

ARN = "arn:aws:rekognition:us-east-1:123456789012:project/stray/1700000000000"
VERSION = "arn:aws:rekognition:us-east-1:123456789012:project/stray/version/v1/1700000000001"


class FakeModels:
    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.stopped: list[str] = []

    def running_versions(self) -> tuple[list[RunningVersion], int]:
        version = RunningVersion("stray", ARN, "CUSTOM_LABELS", VERSION, "v1", "RUNNING", 2)
        return [version], 3

    def stop(self, version_arn: str) -> str:
        if self.refuse:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "StopProjectVersion"
            )
        self.stopped.append(version_arn)
        return "STOPPING"


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, event_type: str, project: str, **detail: Any) -> dict[str, Any]:
        self.events.append((event_type, project, detail))
        return {}


def deps(client: Any, models: FakeModels, publisher: FakePublisher) -> GuardDeps:
    return GuardDeps(
        models=models,  # type: ignore[arg-type]
        store=GuardStore(STATE_TABLE, client),
        serving=ServingStore(STATE_TABLE, client),
        training=TrainingStateStore(STATE_TABLE, client),
        queue=QueueBacklog(None),
        publisher=publisher,  # type: ignore[arg-type]
        state_table=STATE_TABLE,
    )


SETTINGS = AppSettings(
    projects={"digits": ProjectSettings()},
    guard=GuardSettings(stop_unmanaged_after_minutes=0, stop_allowed_projects=("stray",)),
)


def test_an_allowed_unmanaged_model_is_stopped_and_the_event_says_so(state_table: Any) -> None:
    models, publisher = FakeModels(), FakePublisher()
    outcome = run_sweep(SETTINGS, deps(state_table, models, publisher), 1_795_428_000.0)
    assert models.stopped == [VERSION] and outcome["stopped"] == [VERSION] and outcome["projects"] == 3
    types = [(event_type, project) for event_type, project, _ in publisher.events]
    assert types == [(EVENT_GUARD_STOPPED, "stray"), (EVENT_GUARD_UNMANAGED_RUNNING, "stray")]
    reported = publisher.events[1][2]
    assert reported["stopped"] is True and reported["inference_units"] == 2
    # the memory was saved: a later sweep knows since when the version runs
    memory = GuardStore(STATE_TABLE, state_table).load()
    assert memory.seen[VERSION].first_seen_at == 1_795_428_000.0


def test_a_refused_stop_is_published_and_does_not_end_the_sweep(state_table: Any) -> None:
    models, publisher = FakeModels(refuse=True), FakePublisher()
    outcome = run_sweep(SETTINGS, deps(state_table, models, publisher), 1_795_428_000.0)
    assert outcome["stopped"] == []
    refused = [detail for event_type, _, detail in publisher.events if event_type == EVENT_GUARD_STOPPED]
    assert refused[0]["stopped"] is False and "AccessDeniedException" in refused[0]["error"]
    reported = [
        detail for event_type, _, detail in publisher.events if event_type == EVENT_GUARD_UNMANAGED_RUNNING
    ]
    assert reported[0]["stopped"] is False


def test_project_names_come_from_project_arns() -> None:
    assert project_name(ARN) == "stray"


def test_every_project_of_both_features_is_listed_page_by_page() -> None:
    import boto3
    from botocore.stub import Stubber

    from lambdas.guard.gateways import AccountModels

    client = boto3.client("rekognition", region_name="us-east-1")
    stubber = Stubber(client)
    both = ["CUSTOM_LABELS", "CONTENT_MODERATION"]
    other = "arn:aws:rekognition:us-east-1:123456789012:project/adapters/1700000000002"
    stubber.add_response(
        "describe_projects",
        {"ProjectDescriptions": [{"ProjectArn": ARN, "Feature": "CUSTOM_LABELS"}], "NextToken": "t1"},
        {"Features": both, "MaxResults": 100},
    )
    stubber.add_response(
        "describe_projects",
        {"ProjectDescriptions": [{"ProjectArn": other, "Feature": "CONTENT_MODERATION"}]},
        {"Features": both, "MaxResults": 100, "NextToken": "t1"},
    )
    running = {
        "ProjectVersionArn": VERSION,
        "Status": "RUNNING",
        "MinInferenceUnits": 2,
        "MaxInferenceUnits": 4,
    }
    stopped = {"ProjectVersionArn": VERSION.replace("/v1/", "/v0/"), "Status": "STOPPED"}
    stubber.add_response(
        "describe_project_versions",
        {"ProjectVersionDescriptions": [stopped], "NextToken": "p2"},
        {"ProjectArn": ARN, "MaxResults": 100},
    )
    stubber.add_response(
        "describe_project_versions",
        {"ProjectVersionDescriptions": [running]},
        {"ProjectArn": ARN, "MaxResults": 100, "NextToken": "p2"},
    )
    stubber.add_response(
        "describe_project_versions",
        {"ProjectVersionDescriptions": []},
        {"ProjectArn": other, "MaxResults": 100},
    )
    with stubber:
        versions, projects = AccountModels(client).running_versions()
    stubber.assert_no_pending_responses()
    assert projects == 2
    assert versions == [RunningVersion("stray", ARN, "CUSTOM_LABELS", VERSION, "v1", "RUNNING", 2, 4)]
