"""Applying staged lines: few calls, one update at a time, nothing lost on failures. Fakes only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from lambdas.common.constants import EVENT_ENTRIES_APPLIED, EVENT_ENTRIES_REJECTED, EVENT_PROJECT_CREATED
from lambdas.common.settings import AppSettings, ProjectSettings
from lambdas.ingestion.datasets import DatasetBusy, EntryError, ProjectDatasets, UpdateFailed
from lambdas.ingestion.lines import Line
from lambdas.ingestion.service import MAX_UPDATE_ATTEMPTS, Flusher
from lambdas.ingestion.staging import StagedBatch, newest_lines

SETTINGS = AppSettings(projects={"digits": ProjectSettings()})


class FakeStore:
    def __init__(self) -> None:
        self.items: dict[str, StagedBatch] = {}
        self.counter = 0

    def add(self, versions: list[tuple[Line, str]]) -> None:
        self.counter += 1
        sk = f"STAGED#TRAIN#{self.counter:05d}"
        self.items[sk] = StagedBatch(sk, versions)

    def batches(self, project: str, dataset_type: str, max_lines: int) -> list[StagedBatch]:
        return [self.items[k] for k in sorted(self.items)]

    def remove(self, project: str, dataset_type: str, batches: list[StagedBatch]) -> None:
        for batch in batches:
            self.items.pop(batch.sk, None)

    def count_attempt(self, project: str, batch: StagedBatch) -> None:
        current = self.items[batch.sk]
        self.items[batch.sk] = StagedBatch(current.sk, current.versions, current.attempts + 1)


class FakeLease:
    def __init__(self, free: bool = True) -> None:
        self.free = free
        self.released = 0

    def acquire(self, project: str, dataset_type: str, owner: str, seconds: float) -> bool:
        return self.free

    def release(self, project: str, dataset_type: str, owner: str) -> None:
        self.released += 1


@dataclass
class FakeGateway:
    created: bool = False
    fail_updates: int = 0
    busy: bool = False
    busy_after: int | None = None  # updates that succeed before the dataset stays busy
    payloads: list[bytes] = field(default_factory=list)
    total: int = 0
    refused: str | None = None  # a source-ref whose presence makes every update fail
    accepted: list[bytes] = field(default_factory=list)  # payloads of the updates that succeeded

    def ensure_project(self, name: str, feature: str, deadline: float) -> ProjectDatasets:
        result = ProjectDatasets("arn:project", {"TRAIN": "arn:train", "TEST": "arn:test"})
        if not self.created:
            result.created_project, result.created_datasets, self.created = True, ["TRAIN", "TEST"], True
        return result

    def wait_until_idle(self, arn: str, deadline: float) -> dict[str, Any]:
        if self.busy:
            raise DatasetBusy("busy")
        return {"Status": "UPDATE_COMPLETE", "DatasetStats": {"TotalEntries": self.total}}

    def update_entries(self, arn: str, payload: bytes, deadline: float) -> dict[str, Any]:
        if self.busy_after is not None and len(self.payloads) >= self.busy_after:
            raise DatasetBusy("still in use at the deadline")
        self.payloads.append(payload)
        if self.fail_updates:
            self.fail_updates -= 1
            raise UpdateFailed(arn, "SERVICE_ERROR", "try later")
        if self.refused is not None and self.refused.encode() in payload:
            raise UpdateFailed(arn, "CLIENT_ERROR", "the change holds an entry the service refuses")
        self.total += payload.count(b"\n") + 1
        self.accepted.append(payload)
        return {"Status": "UPDATE_COMPLETE", "DatasetStats": {"TotalEntries": self.total}}

    def entries_with_errors(self, arn: str, refs: list[str]) -> list[EntryError]:
        return [EntryError(refs[0], [{"code": "ERROR_X", "message": "m"}])]


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, event_type: str, project: str, **detail: Any) -> dict[str, Any]:
        self.events.append((event_type, project, detail))
        return detail


def line(i: int, size: int = 200) -> Line:
    return Line(f"s3://b/digits/train/x/{i}.png", '{"source-ref":"s3://b/' + str(i) + '"' + " " * size + "}")


def flusher(store: FakeStore, gateway: FakeGateway, lease: FakeLease | None = None, max_bytes: int = 10_000):
    publisher = FakePublisher()
    f = Flusher(
        store=store,  # type: ignore[arg-type]
        lease=lease or FakeLease(),  # type: ignore[arg-type]
        gateway=gateway,  # type: ignore[arg-type]
        publisher=publisher,
        clock=lambda: 0.0,
        max_bytes=max_bytes,
    )
    return f, publisher


def test_staged_lines_go_out_in_the_fewest_calls_and_are_removed() -> None:
    # Given 3 SQS batches staged (with a duplicate upload across them)
    store, gateway = FakeStore(), FakeGateway()
    store.add([(line(i), "t1") for i in range(0, 40)])
    store.add([(line(i), "t2") for i in range(40, 80)])
    store.add([(line(5), "t3")])
    f, publisher = flusher(store, gateway)
    # When flushed
    result = f.flush("digits", "TRAIN", settings=SETTINGS, owner="me", deadline=100)
    # Then 80 distinct lines went out in ceil(bytes / limit) calls and nothing stays staged
    assert result.sent == 80 and result.status == "done"
    assert result.calls == len(gateway.payloads) == 2
    assert all(len(p) <= 10_000 for p in gateway.payloads)
    assert store.items == {}
    kinds = [e[0] for e in publisher.events]
    assert kinds == [EVENT_PROJECT_CREATED, EVENT_ENTRIES_APPLIED]
    applied = publisher.events[-1][2]
    assert (
        applied["entries_sent"] == 80
        and applied["entries_added"] == 80
        and applied["entries_with_errors"] == 1
    )


def test_lease_held_elsewhere_means_busy_and_nothing_sent() -> None:
    store, gateway = FakeStore(), FakeGateway()
    store.add([(line(1), "t")])
    f, _ = flusher(store, gateway, FakeLease(free=False))
    result = f.flush("digits", "TRAIN", settings=SETTINGS, owner="me", deadline=100)
    assert result.status == "busy" and gateway.payloads == [] and len(store.items) == 1


def test_busy_dataset_keeps_lines_staged_and_releases_the_lease() -> None:
    store, gateway, lease = FakeStore(), FakeGateway(busy=True), FakeLease()
    store.add([(line(1), "t")])
    f, _ = flusher(store, gateway, lease)
    result = f.flush("digits", "TRAIN", settings=SETTINGS, owner="me", deadline=100)
    assert result.needs_retry and len(store.items) == 1 and lease.released == 1


def test_failed_update_keeps_lines_until_attempts_run_out_then_reports_them() -> None:
    store, gateway = FakeStore(), FakeGateway(fail_updates=MAX_UPDATE_ATTEMPTS)
    store.add([(line(1), "t"), (line(2), "t")])
    f, publisher = flusher(store, gateway)
    for attempt in range(1, MAX_UPDATE_ATTEMPTS):
        assert f.flush("digits", "TRAIN", settings=SETTINGS, owner="me", deadline=100).needs_retry
        assert next(iter(store.items.values())).attempts == attempt
    last = f.flush("digits", "TRAIN", settings=SETTINGS, owner="me", deadline=100)
    assert last.given_up == 2 and store.items == {}
    rejected = [e for e in publisher.events if e[0] == EVENT_ENTRIES_REJECTED]
    assert rejected and "failed 3 times" in rejected[0][2]["rejections"][0]["reason"]


def test_a_refused_line_costs_only_its_own_item_never_its_neighbours() -> None:
    # Given three staged items, the middle one holding a line the service refuses
    refused = line(5)
    store = FakeStore()
    store.add([(line(1), "t"), (line(2), "t")])
    store.add([(line(4), "t"), (refused, "t")])
    store.add([(line(7), "t")])
    gateway = FakeGateway(refused='"s3://b/5"')
    f, publisher = flusher(store, gateway)
    # When flushes are delivered until nothing is left to retry
    given_up = 0
    for _ in range(2 * MAX_UPDATE_ATTEMPTS):
        result = f.flush("digits", "TRAIN", settings=SETTINGS, owner="me", deadline=100)
        given_up += result.given_up
        if not result.needs_retry:
            break
    # Then every line of the other items went in, and only the refused item's lines were given up
    applied = b"\n".join(gateway.accepted)
    assert all(f'"s3://b/{i}"'.encode() in applied for i in (1, 2, 7)) and store.items == {}
    assert given_up == 2 and b'"s3://b/4"' not in applied
    rejected = [
        r["key"] for e in publisher.events if e[0] == EVENT_ENTRIES_REJECTED for r in e[2]["rejections"]
    ]
    assert sorted(rejected) == sorted([line(4).source_ref, refused.source_ref])


def test_nothing_staged_is_a_cheap_no_op() -> None:
    store, gateway = FakeStore(), FakeGateway()
    f, publisher = flusher(store, gateway)
    assert f.flush("digits", "TRAIN", settings=SETTINGS, owner="me", deadline=100).calls == 0
    assert publisher.events == [] and not gateway.created


@pytest.mark.parametrize("order", [["a", "b"], ["b", "a"]])
def test_newest_version_of_a_source_ref_wins_whatever_the_arrival_order(order: list[str]) -> None:
    versions = {
        "a": (Line("s3://b/k", "old"), "2026-01-01T00:00:00.000Z#1"),
        "b": (Line("s3://b/k", "new"), "2026-01-01T00:00:01.000Z#2"),
    }
    batches = [StagedBatch(str(i), [versions[name]]) for i, name in enumerate(order)]
    assert [line.text for line in newest_lines(batches)] == ["new"]


def test_dataset_busy_mid_round_reports_what_went_in_and_keeps_everything_staged() -> None:
    # Given two chunks' worth of lines, and a dataset that becomes busy after the first update
    store, gateway = FakeStore(), FakeGateway(busy_after=1)
    store.add([(line(i), "t") for i in range(80)])
    f, publisher = flusher(store, gateway)
    result = f.flush("digits", "TRAIN", settings=SETTINGS, owner="me", deadline=100)
    # Then the flush asks to be retried, the applied part is reported, and no line is dropped
    assert result.status == "busy" and result.needs_retry
    applied = [e[2] for e in publisher.events if e[0] == EVENT_ENTRIES_APPLIED]
    assert applied[0]["entries_sent"] == len(gateway.payloads[0].split(b"\n"))
    assert applied[0]["entries_with_errors"] == 0
    assert len(newest_lines(list(store.items.values()))) == 80
