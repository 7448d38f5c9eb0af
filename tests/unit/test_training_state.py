"""The training lock, the production record and the trigger orchestration against moto DynamoDB."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lambdas.common.constants import DETAIL_TYPE_TRAIN_REQUESTED, EVENT_SOURCE, EVENT_TRAINING_SKIPPED
from lambdas.common.production import DatasetSnapshot, ProductionRecord, get_production
from lambdas.common.settings import AppSettings, ProjectSettings
from lambdas.training import environment
from lambdas.training.handlers import execution_end
from lambdas.training.handlers.trigger import parse_trigger_event
from lambdas.training.rekognition import DatasetInfo, ProjectInfo, TrainingRekognition
from lambdas.training.state import ProductionChangedError, TrainingStateStore
from lambdas.training.trigger import STATUS_SKIPPED, STATUS_STARTED, TriggerRequest, request_training
from tests.unit.conftest import STATE_TABLE

NOW = datetime(2026, 11, 21, 18, 0, 0, tzinfo=UTC)
TABLE = STATE_TABLE
DATASET_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/digits/dataset/train/1"
TRAIN_ARN = DATASET_ARN


@pytest.fixture
def dynamodb(state_table: Any) -> Any:
    return state_table


@pytest.fixture
def store(dynamodb: Any) -> TrainingStateStore:
    return TrainingStateStore(TABLE, client=dynamodb)


# --- lock ---------------------------------------------------------------------------------------
def test_lock_is_exclusive_until_released_by_its_holder(store: TrainingStateStore) -> None:
    # Given one holder
    assert store.acquire_lock("digits", token="a", version_name="v-a", now=NOW, ttl_seconds=3600)
    # When a second caller tries, or releases with the wrong token
    assert not store.acquire_lock("digits", token="b", version_name="v-b", now=NOW, ttl_seconds=3600)
    assert not store.release_lock("digits", token="b", outcome="FAILED", reason="x", now=NOW)
    # Then only the holder releases it, and the outcome is recorded
    assert store.release_lock("digits", token="a", outcome="PROMOTED", reason="better", now=NOW)
    record = store.get_training("digits")
    assert record.lock_token is None and record.last_outcome == "PROMOTED" and record.last_reason == "better"
    assert store.acquire_lock("digits", token="b", version_name="v-b", now=NOW, ttl_seconds=3600)


def test_an_expired_lock_can_be_taken_over(store: TrainingStateStore) -> None:
    assert store.acquire_lock("digits", token="a", version_name="v", now=NOW, ttl_seconds=60)
    later = NOW + timedelta(seconds=61)
    assert store.acquire_lock("digits", token="b", version_name="v", now=later, ttl_seconds=60)
    assert store.get_training("digits").lock_token == "b"


def test_locks_of_different_projects_are_independent(store: TrainingStateStore) -> None:
    assert store.acquire_lock("digits", token="a", version_name="v", now=NOW, ttl_seconds=60)
    assert store.acquire_lock("other", token="b", version_name="v", now=NOW, ttl_seconds=60)


def test_confirm_start_records_the_new_entry_baseline(store: TrainingStateStore) -> None:
    store.acquire_lock("digits", token="a", version_name="v", now=NOW, ttl_seconds=60)
    counts = DatasetSnapshot(train_labeled_entries=80, test_labeled_entries=20, labels=3)
    store.confirm_start("digits", token="a", execution_arn="arn:e", counts=counts, now=NOW)
    record = store.get_training("digits")
    assert (
        record.last_counts == counts
        and record.execution_arn == "arn:e"
        and record.locked(int(NOW.timestamp()))
    )


# --- production record --------------------------------------------------------------------------
def _record(arn: str, previous: str | None = None) -> ProductionRecord:
    return ProductionRecord(
        "digits", arn, arn.rsplit("/", 1)[-1], 0.9, NOW.isoformat(), previous_version_arn=previous
    )


def test_production_is_replaced_only_from_the_expected_previous_version(store: TrainingStateStore) -> None:
    assert get_production("digits", table_name=TABLE, client=store.client) is None
    store.put_production(_record("arn:v/1"), expected_previous_arn=None)
    store.put_production(_record("arn:v/1"), expected_previous_arn=None)  # a retry is harmless
    store.put_production(_record("arn:v/2", "arn:v/1"), expected_previous_arn="arn:v/1")
    with pytest.raises(ProductionChangedError, match="changed during the training"):
        store.put_production(_record("arn:v/3", "arn:v/1"), expected_previous_arn="arn:v/1")
    current = get_production("digits", table_name=TABLE, client=store.client)
    assert (
        current is not None and current.version_arn == "arn:v/2" and current.previous_version_arn == "arn:v/1"
    )


def test_get_production_names_the_missing_table_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATE_TABLE_NAME", raising=False)
    with pytest.raises(RuntimeError, match="STATE_TABLE_NAME"):
        get_production("digits")


# --- trigger orchestration with fakes -----------------------------------------------------------
class FakeRekognition(TrainingRekognition):
    def __init__(self, datasets: dict[str, DatasetInfo] | None, project_exists: bool = True) -> None:
        super().__init__(client=object())
        self.datasets = datasets or {}
        self.project_exists = project_exists

    def describe_project(self, name: str) -> ProjectInfo | None:
        if not self.project_exists:
            return None
        return ProjectInfo(
            name, f"arn:p/{name}/1", "CREATED", "CUSTOM_LABELS", {k: v.arn for k, v in self.datasets.items()}
        )

    def describe_dataset(self, dataset_type: str, arn: str) -> DatasetInfo:
        return self.datasets[dataset_type]


class FakeStarter:
    def __init__(self, fail: bool = False) -> None:
        self.started: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    def start(self, name: str, payload: dict[str, Any]) -> str:
        if self.fail:
            raise RuntimeError("states unavailable")
        self.started.append((name, payload))
        return f"arn:execution:{name}"


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, event_type: str, project: str, **detail: Any) -> dict[str, Any]:
        self.events.append((event_type, project, detail))
        return {}


def _datasets(train: int = 40, test: int = 10) -> dict[str, DatasetInfo]:
    return {
        "TRAIN": DatasetInfo("TRAIN", TRAIN_ARN, "UPDATE_COMPLETE", "", train, train, 3),
        "TEST": DatasetInfo("TEST", "arn:d/test", "UPDATE_COMPLETE", "", test, test, 3),
    }


SETTINGS = AppSettings(
    projects={"digits": ProjectSettings(min_new_labeled_entries=20, training_poll_seconds=1)}
)


def _request(
    store: TrainingStateStore, rekognition: Any, starter: FakeStarter, publisher: FakePublisher, force=False
):
    return request_training(
        TriggerRequest("digits", force=force),
        settings=SETTINGS,
        rekognition=rekognition,
        store=store,
        starter=starter,
        publisher=publisher,
        now=NOW,
    )


def test_trigger_starts_one_execution_with_the_workflow_input(store: TrainingStateStore) -> None:
    # Given datasets with 50 labeled entries and no training yet
    starter, publisher = FakeStarter(), FakePublisher()
    # When the schedule fires
    result = _request(store, FakeRekognition(_datasets()), starter, publisher)
    # Then one execution starts, named by the lock token, with everything the state machine reads
    assert result.status == STATUS_STARTED and len(starter.started) == 1
    name, payload = starter.started[0]
    assert payload["lock_token"] == name and payload["project_arn"] == "arn:p/digits/1"
    assert (
        payload["test_dataset_arn"] == "arn:d/test" and payload["output_prefix"] == "digits/training-output/"
    )
    assert payload["settings"]["poll_seconds"] == 1 and payload["snapshot"]["train_labeled_entries"] == 40
    assert store.get_training("digits").last_counts == DatasetSnapshot(40, 10, 40, 10, 3)


def test_second_trigger_while_one_runs_is_skipped_and_published(store: TrainingStateStore) -> None:
    starter, publisher = FakeStarter(), FakePublisher()
    _request(store, FakeRekognition(_datasets()), starter, publisher)
    result = _request(store, FakeRekognition(_datasets(train=400)), starter, publisher, force=True)
    assert result.status == STATUS_SKIPPED and "in flight" in result.reason
    assert len(starter.started) == 1
    assert publisher.events[-1][0] == EVENT_TRAINING_SKIPPED


def test_no_new_entries_after_a_training_skips(store: TrainingStateStore) -> None:
    starter, publisher = FakeStarter(), FakePublisher()
    first = _request(store, FakeRekognition(_datasets()), starter, publisher)
    store.release_lock("digits", token=starter.started[0][0], outcome="PROMOTED", reason="", now=NOW)
    second = _request(store, FakeRekognition(_datasets(train=45)), starter, publisher)
    assert first.status == STATUS_STARTED and second.status == STATUS_SKIPPED
    assert "only 5 new labeled entries" in second.reason


def test_a_failed_start_releases_the_lock(store: TrainingStateStore) -> None:
    with pytest.raises(RuntimeError, match="states unavailable"):
        _request(store, FakeRekognition(_datasets()), FakeStarter(fail=True), FakePublisher())
    record = store.get_training("digits")
    assert record.lock_token is None and record.last_outcome == "FAILED"
    assert record.last_counts is None  # the baseline moves only when a training really starts


def test_missing_project_is_skipped_with_a_reason(store: TrainingStateStore) -> None:
    publisher = FakePublisher()
    result = _request(store, FakeRekognition(None, project_exists=False), FakeStarter(), publisher)
    assert result.status == STATUS_SKIPPED and "digits/train/<label>/" in result.reason


# --- Rekognition integration class (botocore Stubber) -------------------------------------------
def test_list_labels_follows_next_tokens() -> None:
    client = boto3.client("rekognition", region_name="us-east-1")
    stubber = Stubber(client)
    first = {
        "DatasetLabelDescriptions": [{"LabelName": "a", "LabelStats": {"EntryCount": 3}}],
        "NextToken": "t",
    }
    second = {
        "DatasetLabelDescriptions": [
            {"LabelName": "b", "LabelStats": {"EntryCount": 1, "BoundingBoxCount": 2}}
        ]
    }
    stubber.add_response("list_dataset_labels", first, {"DatasetArn": DATASET_ARN, "MaxResults": 100})
    stubber.add_response(
        "list_dataset_labels", second, {"DatasetArn": DATASET_ARN, "MaxResults": 100, "NextToken": "t"}
    )
    with stubber:
        labels = TrainingRekognition(client).list_labels(DATASET_ARN)
    assert [(label.name, label.entries, label.bounding_boxes) for label in labels] == [
        ("a", 3, 0),
        ("b", 1, 2),
    ]


def test_describe_project_asks_for_both_features() -> None:
    client = boto3.client("rekognition", region_name="us-east-1")
    stubber = Stubber(client)
    response = {
        "ProjectDescriptions": [
            {
                "ProjectArn": "arn:aws:rekognition:us-east-1:1:project/moderation/1",
                "Status": "CREATED",
                "Feature": "CONTENT_MODERATION",
                "Datasets": [{"DatasetType": "TRAIN", "DatasetArn": TRAIN_ARN}],
            }
        ]
    }
    expected = {
        "ProjectNames": ["moderation"],
        "Features": ["CUSTOM_LABELS", "CONTENT_MODERATION"],
        "MaxResults": 100,
    }
    stubber.add_response("describe_projects", response, expected)
    with stubber:
        project = TrainingRekognition(client).describe_project("moderation")
    assert (
        project is not None
        and project.feature == "CONTENT_MODERATION"
        and project.datasets == {"TRAIN": TRAIN_ARN}
    )


# --- handler edges --------------------------------------------------------------------------------
def test_trigger_event_parsing_accepts_schedule_and_on_demand_events() -> None:
    scheduled = parse_trigger_event({"project": "digits", "force": False, "source": "schedule"})
    on_demand = parse_trigger_event(
        {
            "detail-type": DETAIL_TYPE_TRAIN_REQUESTED,
            "source": EVENT_SOURCE,
            "detail": {"project": "digits", "force": True},
        }
    )
    assert (scheduled.project, scheduled.force, scheduled.source) == ("digits", False, "schedule")
    assert (on_demand.project, on_demand.force, on_demand.source) == ("digits", True, "on-demand")
    with pytest.raises(ValueError, match='"project": "<name>"'):
        parse_trigger_event({"force": True})


def test_handler_environment_names_the_missing_or_malformed_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a trigger environment whose state machine ARN is missing and whose topic is not an ARN
    monkeypatch.setenv("STATE_TABLE_NAME", TABLE)
    monkeypatch.setenv("LIFECYCLE_TOPIC_ARN", "lifecycle")
    monkeypatch.setenv("SETTINGS_PARAMETER_NAME", "/autopilot/settings")
    monkeypatch.delenv("TRAINING_STATE_MACHINE_ARN", raising=False)
    # When it is validated, Then the error names both variables
    with pytest.raises(ValueError) as raised:
        environment.TriggerEnvironment.from_environ()
    assert "LIFECYCLE_TOPIC_ARN" in str(raised.value) and "TRAINING_STATE_MACHINE_ARN" in str(raised.value)
    # And the state-machine tasks need only the table and the topic
    monkeypatch.setenv("LIFECYCLE_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:lifecycle")
    assert environment.TrainingEnvironment.from_environ().state_table == TABLE


class _Context:
    function_name = "execution-end"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:execution-end"
    aws_request_id = "req"


def test_execution_end_releases_a_left_lock_and_reports_once(
    store: TrainingStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a training whose execution timed out while holding the lock
    sns = boto3.client("sns", region_name="us-east-1")
    topic = sns.create_topic(Name="lifecycle")["TopicArn"]
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="observer")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv("STATE_TABLE_NAME", TABLE)
    monkeypatch.setenv("LIFECYCLE_TOPIC_ARN", topic)
    store.acquire_lock("digits", token="digits-x", version_name="v", now=datetime.now(UTC), ttl_seconds=3600)
    event = {
        "version": "0",
        "id": "1",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": NOW.isoformat(),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:digits-x",
            "name": "digits-x",
            "status": "TIMED_OUT",
            "input": json.dumps({"project": "digits", "lock_token": "digits-x", "version_name": "v"}),
        },
    }
    # When the status-change event arrives twice
    first = execution_end.handle(event, _Context())
    second = execution_end.handle(event, _Context())
    # Then the lock is released once, and one training.failed event names the status
    assert first["released"] and not second["released"]
    assert store.get_training("digits").lock_token is None
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    bodies = [json.loads(json.loads(m["Body"])["Message"]) for m in messages]
    assert [b["type"] for b in bodies] == ["training.failed"]
    assert "TIMED_OUT" in bodies[0]["detail"]["reason"]
