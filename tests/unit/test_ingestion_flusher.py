"""Applying staged lines: few calls, one update at a time, verified, nothing lost on service errors.
Fakes only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambdas.common.constants import EVENT_ENTRIES_APPLIED, EVENT_ENTRIES_REJECTED, EVENT_PROJECT_CREATED
from lambdas.common.settings import AppSettings, ProjectSettings
from lambdas.ingestion.datasets import DatasetBusy, EntryError, ProjectDatasets, UpdateFailed, UpdateOutcome
from lambdas.ingestion.lines import Line
from lambdas.ingestion.service import SQS_MAX_DELAY_SECONDS, Flusher
from lambdas.ingestion.staging import RetryStreak, StagedBatch, newest_lines

SETTINGS = AppSettings(projects={"digits": ProjectSettings()})
HOUR = 3600.0


class FakeStore:
    def __init__(self) -> None:
        self.items: dict[str, StagedBatch] = {}
        self.counter = 0
        self.applied: dict[tuple[str, str], str] = {}  # (dataset arn, ref) -> seq
        self.streak: RetryStreak | None = None

    def add(self, versions: list[tuple[Line, str]]) -> None:
        self.counter += 1
        sk = f"STAGED#TRAIN#{self.counter:05d}"
        self.items[sk] = StagedBatch(sk, versions)

    def staged_refs(self) -> set[str]:
        return {line.source_ref for line in newest_lines(list(self.items.values()))}

    def batches(self, project: str, dataset_type: str, max_lines: int) -> list[StagedBatch]:
        return [self.items[k] for k in sorted(self.items)]

    def remove(self, project: str, dataset_type: str, batches: list[StagedBatch]) -> None:
        for batch in batches:
            self.items.pop(batch.sk, None)

    def applied_seqs(self, project: str, dataset_type: str, arn: str, refs: list[str]) -> dict[str, str]:
        return {ref: self.applied[(arn, ref)] for ref in refs if (arn, ref) in self.applied}

    def record_applied(
        self, project: str, dataset_type: str, arn: str, versions: list[tuple[str, str]]
    ) -> None:
        self.applied.update({(arn, ref): seq for ref, seq in versions})

    def retry_streak(self, project: str, dataset_type: str) -> RetryStreak | None:
        return self.streak

    def save_retry_streak(self, project: str, dataset_type: str, streak: RetryStreak) -> None:
        self.streak = streak

    def clear_retry_streak(self, project: str, dataset_type: str) -> None:
        self.streak = None


class FakeLease:
    def __init__(self, free: bool = True) -> None:
        self.free = free
        self.released = 0

    def acquire(self, project: str, dataset_type: str, owner: str, seconds: float) -> bool:
        return self.free

    def release(self, project: str, dataset_type: str, owner: str) -> None:
        self.released += 1


def throttled() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "UpdateDatasetEntries"
    )


@dataclass
class FakeGateway:
    """A dataset with the service's documented semantics: source-ref is the key, content errors are
    left out silently, a CLIENT_ERROR fails the whole update."""

    created: bool = False
    service_errors: int = 0  # next updates that end UPDATE_FAILED (SERVICE_ERROR)
    throttles: int = 0  # next updates that raise ThrottlingException (after the client's retries)
    busy: bool = False
    busy_after: int | None = None  # updates that succeed before the dataset stays busy
    left_out: set[str] = field(default_factory=set)  # refs the service removes (content errors)
    refused: set[str] = field(default_factory=set)  # refs whose presence fails the update (CLIENT_ERROR)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    payloads: list[bytes] = field(default_factory=list)
    lookups: int = 0

    def ensure_project(self, name: str, feature: str, deadline: float) -> ProjectDatasets:
        result = ProjectDatasets("arn:project", {"TRAIN": "arn:train", "TEST": "arn:test"})
        if not self.created:
            result.created_project, result.created_datasets, self.created = True, ["TRAIN", "TEST"], True
        return result

    def describe(self) -> dict[str, Any]:
        return {"Status": "UPDATE_COMPLETE", "DatasetStats": {"TotalEntries": len(self.entries)}}

    def wait_until_idle(self, arn: str, deadline: float) -> dict[str, Any]:
        if self.busy:
            raise DatasetBusy("busy")
        return self.describe()

    def update_entries(self, arn: str, payload: bytes, deadline: float) -> UpdateOutcome:
        self.wait_until_idle(arn, deadline)
        if self.busy_after is not None and len(self.payloads) >= self.busy_after:
            raise DatasetBusy("still in use at the deadline")
        if self.throttles:
            self.throttles -= 1
            raise throttled()
        self.payloads.append(payload)
        before = self.describe()
        if self.service_errors:
            self.service_errors -= 1
            raise UpdateFailed(arn, "SERVICE_ERROR", "An internal error occurred.")
        lines = [json.loads(text) for text in payload.decode().split("\n")]
        if any(line["source-ref"] in self.refused for line in lines):
            raise UpdateFailed(arn, "CLIENT_ERROR", "ERROR_MANIFEST_TOO_MANY_LABELS: too many labels.")
        for line in lines:
            if line["source-ref"] not in self.left_out:
                self.entries[line["source-ref"]] = line
        return UpdateOutcome(before, self.describe())

    def present(self, arn: str, refs: list[str]) -> set[str]:
        self.lookups += 1
        return {ref for ref in refs if ref in self.entries}

    def entries_with_errors(self, arn: str, refs: list[str]) -> list[EntryError]:
        return []


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, event_type: str, project: str, **detail: Any) -> dict[str, Any]:
        self.events.append((event_type, project, detail))
        return detail

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [detail for event_type, _, detail in self.events if event_type == kind]

    def rejections(self) -> list[dict[str, Any]]:
        return [r for detail in self.of(EVENT_ENTRIES_REJECTED) for r in detail["rejections"]]


def ref(i: int) -> str:
    return f"s3://b/digits/train/x/{i}.png"


def line(i: int, label: str = "x", pad: int = 200) -> Line:
    body = {"source-ref": ref(i), "l": 1, "l-metadata": {"class-name": label, "pad": " " * pad}}
    return Line(ref(i), json.dumps(body))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def flusher(
    store: FakeStore,
    gateway: FakeGateway,
    lease: FakeLease | None = None,
    max_bytes: int = 10_000,
    wall: Clock | None = None,
    bound_hours: float = 6,
) -> tuple[Flusher, FakePublisher]:
    publisher = FakePublisher()
    f = Flusher(
        store=store,  # type: ignore[arg-type]
        lease=lease or FakeLease(),  # type: ignore[arg-type]
        gateway=gateway,  # type: ignore[arg-type]
        publisher=publisher,
        clock=lambda: 0.0,
        max_bytes=max_bytes,
        retry_bound_seconds=bound_hours * HOUR,
        retry_base_seconds=30,
        wall_clock=wall or Clock(),
    )
    return f, publisher


def flush(f: Flusher) -> Any:
    return f.flush("digits", "TRAIN", settings=SETTINGS, owner="me", deadline=100)


def test_staged_lines_go_out_in_the_fewest_calls_and_are_removed() -> None:
    # Given 3 SQS batches staged (with a duplicate upload across them)
    store, gateway = FakeStore(), FakeGateway()
    store.add([(line(i), "t1") for i in range(0, 40)])
    store.add([(line(i), "t2") for i in range(40, 80)])
    store.add([(line(5), "t3")])
    f, publisher = flusher(store, gateway)
    # When flushed
    result = flush(f)
    # Then 80 distinct lines went out in ceil(bytes / limit) calls and nothing stays staged
    assert result.sent == 80 and result.status == "done"
    assert result.calls == len(gateway.payloads) == 3
    assert all(len(p) <= 10_000 for p in gateway.payloads)
    assert store.items == {} and len(gateway.entries) == 80
    assert [e[0] for e in publisher.events] == [EVENT_PROJECT_CREATED, EVENT_ENTRIES_APPLIED]
    applied = publisher.of(EVENT_ENTRIES_APPLIED)[0]
    assert (applied["entries_sent"], applied["entries_added"], applied["entries_updated"]) == (80, 80, 0)
    # The count check added up: no listing was needed
    assert gateway.lookups == 0


def test_lease_held_elsewhere_means_busy_and_nothing_sent() -> None:
    store, gateway = FakeStore(), FakeGateway()
    store.add([(line(1), "t")])
    f, _ = flusher(store, gateway, FakeLease(free=False))
    result = flush(f)
    assert result.status == "busy" and gateway.payloads == [] and len(store.items) == 1


def test_busy_dataset_keeps_lines_staged_and_releases_the_lease() -> None:
    store, gateway, lease = FakeStore(), FakeGateway(busy=True), FakeLease()
    store.add([(line(1), "t")])
    f, _ = flusher(store, gateway, lease)
    result = flush(f)
    assert result.needs_retry and len(store.items) == 1 and lease.released == 1


def test_three_service_errors_in_a_row_are_waited_out_and_every_line_goes_in() -> None:
    # Given 20 valid lines and a dataset whose next three updates end UPDATE_FAILED (SERVICE_ERROR)
    store, gateway = FakeStore(), FakeGateway(service_errors=3)
    store.add([(line(i), "t") for i in range(20)])
    f, publisher = flusher(store, gateway, max_bytes=100_000)
    # When flushes are delivered as the handler requests them
    delays = []
    for _ in range(10):
        result = flush(f)
        if not result.needs_retry:
            break
        assert result.status == "retry" and store.staged_refs() == {ref(i) for i in range(20)}
        delays.append(result.retry_after)
    # Then all 20 became entries, none was rejected, and the waits grew
    assert result.status == "done" and set(gateway.entries) == {ref(i) for i in range(20)}
    assert publisher.rejections() == [] and store.items == {} and store.streak is None
    assert len(delays) == 3 and delays[0] < delays[2] <= SQS_MAX_DELAY_SECONDS


def test_throttling_beyond_the_client_retries_is_waited_out_not_raised() -> None:
    store, gateway = FakeStore(), FakeGateway(throttles=2)
    store.add([(line(i), "t") for i in range(3)])
    f, publisher = flusher(store, gateway)
    first = flush(f)
    assert first.status == "retry" and first.trouble is not None and "ThrottlingException" in first.trouble
    assert flush(f).status == "retry"
    assert flush(f).status == "done"
    assert set(gateway.entries) == {ref(i) for i in range(3)} and publisher.rejections() == []


def test_an_error_that_is_not_the_services_is_raised() -> None:
    class Denied(FakeGateway):
        def update_entries(self, arn: str, payload: bytes, deadline: float) -> UpdateOutcome:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Update")

    store = FakeStore()
    store.add([(line(1), "t")])
    f, _ = flusher(store, Denied())
    with pytest.raises(ClientError):
        flush(f)
    assert len(store.items) == 1


def test_service_errors_past_the_bound_keep_the_lines_staged_and_stop_retrying() -> None:
    # Given a dataset that keeps failing with service errors
    wall = Clock()
    store, gateway = FakeStore(), FakeGateway(service_errors=1_000)
    store.add([(line(i), "t") for i in range(5)])
    f, publisher = flusher(store, gateway, wall=wall, bound_hours=6)
    # When retried over more than the bound
    assert flush(f).status == "retry"
    wall.now += 5 * HOUR
    assert flush(f).status == "retry"
    wall.now += 2 * HOUR
    stalled = flush(f)
    # Then the flush stops asking to be retried, and every line is still staged, none rejected
    assert stalled.status == "stalled" and not stalled.needs_retry
    assert store.staged_refs() == {ref(i) for i in range(5)} and publisher.rejections() == []
    # And once the service recovers, the next flush applies them and ends the streak
    gateway.service_errors = 0
    assert flush(f).status == "done" and len(gateway.entries) == 5 and store.streak is None


def test_a_client_error_costs_only_the_line_that_causes_it() -> None:
    # Given ten lines, one of which makes any update that holds it fail with CLIENT_ERROR
    store, gateway = FakeStore(), FakeGateway(refused={ref(6)})
    store.add([(line(i), "t") for i in range(10)])
    f, publisher = flusher(store, gateway, max_bytes=100_000)
    # When flushed
    result = flush(f)
    # Then the nine others are entries, and that one line is rejected with the service's reason,
    # its S3 key in `key` and its location separately
    assert result.status == "done" and set(gateway.entries) == {ref(i) for i in range(10) if i != 6}
    (rejection,) = publisher.rejections()
    assert rejection["key"] == "digits/train/x/6.png" and rejection["location"] == ref(6)
    assert "ERROR_MANIFEST_TOO_MANY_LABELS: too many labels." in rejection["reason"]
    assert result.refused == 1 and store.items == {}
    applied = publisher.of(EVENT_ENTRIES_APPLIED)[0]
    assert applied["entries_added"] == 9 and applied["entries_refused"] == 1


def test_a_line_the_service_leaves_out_is_rejected_and_never_counted_as_updated() -> None:
    # Given ten lines; the service removes one of them (a terminal content error) without a word
    store, gateway = FakeStore(), FakeGateway(left_out={ref(3)})
    store.add([(line(i), "t") for i in range(10)])
    f, publisher = flusher(store, gateway, max_bytes=100_000)
    # When flushed
    result = flush(f)
    # Then the count check does not add up, the lines are looked up, and the missing one is rejected
    assert gateway.lookups == 1
    assert (result.added, result.updated, result.removed) == (9, 0, 1)
    (rejection,) = publisher.rejections()
    assert rejection["key"] == "digits/train/x/3.png" and "terminal content error" in rejection["reason"]
    applied = publisher.of(EVENT_ENTRIES_APPLIED)[0]
    assert (applied["entries_added"], applied["entries_updated"], applied["entries_removed"]) == (9, 0, 1)


def test_a_late_redelivery_after_a_relabel_leaves_the_new_label() -> None:
    # Given an image applied as "cat", then relabelled "dog" by a newer manifest line
    store, gateway = FakeStore(), FakeGateway()
    f, _ = flusher(store, gateway)
    store.add([(line(1, "cat"), "2026-01-01T00:00:00.000Z#01")])
    flush(f)
    store.add([(line(1, "dog"), "2026-01-01T00:05:00.000Z#01")])
    flush(f)
    assert store.items == {}
    # When the old upload's notification arrives again, after the staged items are gone
    store.add([(line(1, "cat"), "2026-01-01T00:00:00.000Z#01")])
    result = flush(f)
    # Then it is ignored: the entry keeps the new label, and nothing was sent
    assert gateway.entries[ref(1)]["l-metadata"]["class-name"] == "dog"
    assert result.older == 1 and result.calls == 0 and store.items == {}


def test_nothing_staged_is_a_cheap_no_op() -> None:
    store, gateway = FakeStore(), FakeGateway()
    f, publisher = flusher(store, gateway)
    assert flush(f).calls == 0
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
    result = flush(f)
    # Then the flush asks to be retried, the applied part is reported, and no line is dropped
    assert result.status == "busy" and result.needs_retry
    applied = publisher.of(EVENT_ENTRIES_APPLIED)
    assert applied[0]["entries_sent"] == len(gateway.payloads[0].split(b"\n"))
    assert len(newest_lines(list(store.items.values()))) == 80
    # And the next flush sends only what is not in yet
    gateway.busy_after = None
    flush(f)
    assert len(gateway.entries) == 80 and store.items == {}
    assert sum(len(p.split(b"\n")) for p in gateway.payloads) == 80
