"""The one promote path (training workflow and `autopilot promote` / `rollback`) against moto DynamoDB."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from lambdas.common.constants import EVENT_VERSION_PROMOTED
from lambdas.common.production import get_production
from lambdas.training.contracts import ProductionSummary, PromoteRequest
from lambdas.training.promotion import build_record, promote, run_promote
from lambdas.training.state import ProductionChangedError, TrainingStateStore
from tests.unit.conftest import STATE_TABLE

NOW = datetime(2026, 11, 21, 18, 0, 0, tzinfo=UTC)
V1 = "arn:aws:rekognition:us-east-1:123456789012:project/digits/version/digits-v1/1"
V2 = "arn:aws:rekognition:us-east-1:123456789012:project/digits/version/digits-v2/2"


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, event_type: str, project: str, **detail: Any) -> dict[str, Any]:
        self.events.append((event_type, project, detail))
        return {"type": event_type, "project": project, "detail": detail}


@pytest.fixture
def store(state_table: Any) -> TrainingStateStore:
    return TrainingStateStore(STATE_TABLE, client=state_table)


def _record(arn: str, name: str, previous: str | None, f1: float = 0.9) -> Any:
    snapshot = {"train_labeled_entries": 80, "test_labeled_entries": 20, "labels": 3}
    return build_record(
        project="digits",
        version_arn=arn,
        version_name=name,
        f1_score=f1,
        snapshot=snapshot,
        previous_version_arn=previous,
        execution_arn=None,
        now=NOW,
    )


def test_a_promotion_writes_the_record_and_publishes_one_full_event(store: TrainingStateStore) -> None:
    # Given version 1 in production
    publisher = RecordingPublisher()
    promote(store, _record(V1, "digits-v1", None, 0.8), publisher, previous_f1_score=None, reason="first")
    # When version 2 is promoted from it (as an operator's `autopilot promote` does)
    promote(store, _record(V2, "digits-v2", V1), publisher, previous_f1_score=0.8, reason="operator")
    # Then the record names version 2 and its predecessor
    current = get_production("digits", table_name=STATE_TABLE, client=store.client)
    assert current is not None and current.version_arn == V2 and current.previous_version_arn == V1
    # And each promotion published version.promoted with the same fields
    assert [event[0] for event in publisher.events] == [EVENT_VERSION_PROMOTED, EVENT_VERSION_PROMOTED]
    detail = publisher.events[1][2]
    assert detail == {
        "version_arn": V2,
        "version_name": "digits-v2",
        "f1_score": 0.9,
        "previous_version_arn": V1,
        "previous_f1_score": 0.8,
        "dataset_snapshot": {
            "train_labeled_entries": 80,
            "test_labeled_entries": 20,
            "train_total_entries": 0,
            "test_total_entries": 0,
            "labels": 3,
        },
        "reason": "operator",
    }


def test_a_promotion_from_a_version_no_longer_in_production_is_refused_and_not_published(
    store: TrainingStateStore,
) -> None:
    publisher = RecordingPublisher()
    promote(store, _record(V1, "digits-v1", None), publisher, previous_f1_score=None, reason="first")
    # When a promotion expects no production version, but version 1 is there
    with pytest.raises(ProductionChangedError, match="changed"):
        promote(store, _record(V2, "digits-v2", None), publisher, previous_f1_score=None, reason="late")
    # Then the record still names version 1 and only the first promotion was announced
    current = get_production("digits", table_name=STATE_TABLE, client=store.client)
    assert current is not None and current.version_arn == V1
    assert len(publisher.events) == 1


def test_the_workflow_step_promotes_from_the_production_the_gate_saw(store: TrainingStateStore) -> None:
    publisher = RecordingPublisher()
    promote(store, _record(V1, "digits-v1", None, 0.8), publisher, previous_f1_score=None, reason="first")
    result = run_promote(
        PromoteRequest(
            project="digits",
            version_arn=V2,
            version_name="digits-v2",
            f1_score=0.93,
            production=ProductionSummary(
                version_arn=V1, version_name="digits-v1", f1_score=0.8, status="RUNNING"
            ),
            snapshot={"train_labeled_entries": 90},
            execution_arn="arn:aws:states:us-east-1:123456789012:execution:training:digits-1",
            reason="F1 0.93 beats 0.80",
        ),
        store=store,
        publisher=publisher,
    )
    assert result.version_arn == V2
    current = get_production("digits", table_name=STATE_TABLE, client=store.client)
    assert current is not None and current.previous_version_arn == V1 and current.execution_arn is not None
    assert publisher.events[-1][2]["previous_f1_score"] == 0.8
