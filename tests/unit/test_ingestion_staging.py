"""Staged lines and the per-dataset lease in a (moto) DynamoDB table shaped like the state table."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.ingestion.lines import Line
from lambdas.ingestion.staging import (
    DatasetLease,
    Stager,
    StagingStore,
    event_seq,
    newest_lines,
    split_versions,
)
from tests.unit.conftest import STATE_TABLE


@pytest.fixture
def table(state_table: Any) -> tuple[str, Any]:
    return STATE_TABLE, state_table


def lines(n: int, prefix: str = "k") -> list[Line]:
    return [
        Line(f"s3://b/{prefix}{i}", '{"source-ref":"s3://b/' + f"{prefix}{i}" + '","x":"' + "é" * 50 + '"}')
        for i in range(n)
    ]


def test_staged_lines_round_trip_per_dataset(table) -> None:
    name, client = table
    store = StagingStore(name, client)
    # Given lines staged for TRAIN and TEST of one project, and for another project
    store.stage("digits", "TRAIN", lines(30), event_seq("2026-01-01T00:00:00.000Z", "A1"))
    store.stage("digits", "TEST", lines(2, "t"), "s")
    store.stage("other", "TRAIN", lines(5, "o"), "s")
    # When TRAIN of digits is read / Then exactly its lines come back
    batches = store.batches("digits", "TRAIN", max_lines=1000)
    assert sorted(line.source_ref for line in newest_lines(batches)) == sorted(
        item.source_ref for item in lines(30)
    )
    # And removing them leaves the other datasets alone
    store.remove("digits", "TRAIN", batches)
    assert store.batches("digits", "TRAIN", 1000) == []
    assert len(newest_lines(store.batches("digits", "TEST", 1000))) == 2


def test_large_staging_is_split_into_items_under_the_item_limit(table) -> None:
    name, client = table
    store = StagingStore(name, client)
    many = lines(4000)
    store.stage("digits", "TRAIN", many, "s")
    batches = store.batches("digits", "TRAIN", max_lines=100_000)
    assert len(batches) > 1
    assert len(newest_lines(batches)) == 4000
    assert all(len(part) for part in split_versions([(item, "s") for item in many]))


def test_reading_stops_near_max_lines(table) -> None:
    name, client = table
    store = StagingStore(name, client)
    for i in range(5):
        store.stage("digits", "TRAIN", lines(10, f"b{i}-"), "s")
    assert sum(len(b.versions) for b in store.batches("digits", "TRAIN", max_lines=20)) == 20


def test_event_seq_orders_time_then_padded_sequencer() -> None:
    assert event_seq("2026-01-01T00:00:00.000Z", "0A") < event_seq("2026-01-01T00:00:00.000Z", "0A1")
    assert event_seq("2026-01-01T00:00:00.000Z", "FF") < event_seq("2026-01-01T00:00:00.001Z", "00")


def test_lease_admits_one_holder_until_released_or_expired(table) -> None:
    name, client = table
    now = [1000.0]
    lease = DatasetLease(name, client, clock=lambda: now[0])
    assert lease.acquire("digits", "TRAIN", "a", seconds=60)
    assert not lease.acquire("digits", "TRAIN", "b", seconds=60)
    assert lease.acquire("digits", "TEST", "b", seconds=60)  # another dataset is independent
    lease.release("digits", "TRAIN", "b")  # not the holder: no effect
    assert not lease.acquire("digits", "TRAIN", "b", seconds=60)
    lease.release("digits", "TRAIN", "a")
    assert lease.acquire("digits", "TRAIN", "b", seconds=60)
    # A holder that died loses the lease when it expires
    now[0] += 61
    assert lease.acquire("digits", "TRAIN", "c", seconds=60)


def test_ordering_tokens_are_kept_per_dataset_and_source_ref(table) -> None:
    name, client = table
    store = StagingStore(name, client)
    refs = [f"s3://b/{'long/' * 250}{i}.png" for i in range(130)]  # longer than a sort key may be
    # Given tokens recorded for 130 source-refs of one dataset
    store.record_applied("digits", "TRAIN", "arn:train:1", [(ref, f"t{i:03d}") for i, ref in enumerate(refs)])
    # When read back (more than one BatchGetItem)
    found = store.applied_seqs("digits", "TRAIN", "arn:train:1", [*refs, "s3://b/never.png"])
    # Then each comes back with its token, and unknown refs and other datasets have none
    assert found == {ref: f"t{i:03d}" for i, ref in enumerate(refs)}
    assert store.applied_seqs("digits", "TRAIN", "arn:train:2", refs[:3]) == {}
    store.record_applied("digits", "TRAIN", "arn:train:1", [(refs[0], "t999")])
    assert store.applied_seqs("digits", "TRAIN", "arn:train:1", refs[:1]) == {refs[0]: "t999"}


def test_retry_streak_round_trip(table) -> None:
    from lambdas.ingestion.staging import RetryStreak

    name, client = table
    store = StagingStore(name, client)
    assert store.retry_streak("digits", "TRAIN") is None
    store.save_retry_streak("digits", "TRAIN", RetryStreak(1_700_000_000.5, 3))
    assert store.retry_streak("digits", "TRAIN") == RetryStreak(1_700_000_000.5, 3)
    assert store.retry_streak("digits", "TEST") is None
    store.clear_retry_streak("digits", "TRAIN")
    assert store.retry_streak("digits", "TRAIN") is None


def test_the_first_task_type_proposed_is_the_projects_for_every_caller(table) -> None:
    name, client = table
    first, second = StagingStore(name, client), StagingStore(name, client)
    assert first.project_task("digits", "IMAGE_LEVEL_LABELS") == "IMAGE_LEVEL_LABELS"
    assert second.project_task("digits", "OBJECT_LOCALIZATION") == "IMAGE_LEVEL_LABELS"
    assert second.project_task("other", "OBJECT_LOCALIZATION") == "OBJECT_LOCALIZATION"


def test_staged_counts_are_per_dataset_of_one_project(table) -> None:
    name, client = table
    store = StagingStore(name, client)
    # Given lines staged for both datasets of one project, and for another project
    store.stage("digits", "TRAIN", lines(30), "s")
    store.stage("digits", "TEST", lines(2, "t"), "s")
    store.stage("other", "TRAIN", lines(5, "o"), "s")
    # When the project's staged lines are counted / Then per dataset, the other project left out
    assert store.staged_counts("digits") == {"TRAIN": 30, "TEST": 2}
    assert store.staged_counts("none") == {}


def test_a_stager_holds_image_lines_until_the_batch_ends_and_remembers_every_dataset(table) -> None:
    name, client = table
    stager = Stager(StagingStore(name, client))
    # Given image lines held for one dataset and a manifest staged for another
    stager.hold("digits", "TRAIN", [(line, "s") for line in lines(3)])
    stager.hold("digits", "TRAIN", [(line, "s") for line in lines(2, "x")])
    stager.store.stage("digits", "TEST", lines(4, "t"), "s")
    stager.staged("digits", "TEST")
    # Then nothing of the held lines is in the table yet
    assert stager.store.staged_counts("digits") == {"TEST": 4}
    # When the held lines are written / Then all of them are, and both datasets are to be flushed
    assert stager.write_held() == 5
    assert stager.store.staged_counts("digits") == {"TRAIN": 5, "TEST": 4}
    assert stager.touched == {("digits", "TRAIN"), ("digits", "TEST")}
    assert stager.write_held() == 0
