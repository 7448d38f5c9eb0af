"""Ingestion use cases: turn one uploaded object into staged lines, and apply a dataset's staged
lines with as few UpdateDatasetEntries calls as possible, one update at a time per dataset.

Two steps, so that S3 events never wait on Rekognition:

1. `ingest_object` (per S3 event): route the key, validate, build or read the Ground Truth lines
   and stage them in the state table. The SQS message is then done.
2. `flush_dataset` (per flush request, sent to the same queue with a delay after step 1): under
   the dataset's lease, read everything staged, pack it into <= 5 MB calls, send them one after
   the other waiting for UPDATE_COMPLETE, remove what was applied, report errors and counts.

Everything uploaded during the delay and during a running update is applied by the next flush,
so a burst costs about ceil(total bytes / 5 MB) calls instead of one call per image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from lambdas.common.constants import (
    EVENT_ENTRIES_APPLIED,
    EVENT_ENTRIES_REJECTED,
    EVENT_PROJECT_CREATED,
    MANIFESTS_FOLDER,
)
from lambdas.common.settings import AppSettings
from lambdas.ingestion import chunking
from lambdas.ingestion.datasets import DatasetBusy, DatasetGateway, UpdateFailed
from lambdas.ingestion.keys import IgnoredKey, ImageKey, ManifestKey, Rejected, route_key, source_ref
from lambdas.ingestion.lines import Line, image_line, read_manifest
from lambdas.ingestion.staging import DatasetLease, StagedBatch, StagingStore, event_seq, newest_lines
from lambdas.ingestion.validation import check_image

MAX_UPDATE_ATTEMPTS = 3  # failed dataset updates before a staged line is given up and reported
MAX_LINES_PER_ROUND = 60_000  # staged lines read per round (~12 calls' worth of typical lines)
REPORTED_ERRORS = 20  # entries with errors listed in one "entries applied" event
REJECTIONS_PER_EVENT = 50  # rejections per "entries rejected" event (SNS messages stay small)
MANIFEST_BLOCK_LINES = 5_000  # manifest lines validated and staged together
MAX_LINE_REJECTIONS_REPORTED = 1_000  # per manifest; the rest are counted in one more rejection


class Publisher(Protocol):
    def publish(self, event_type: str, project: str, **detail: Any) -> dict[str, Any]: ...


class ObjectSource(Protocol):
    def read_image_info(self, bucket: str, key: str, version_id: str | None) -> Any: ...

    def iter_lines(self, bucket: str, key: str, version_id: str | None) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class S3ObjectEvent:
    bucket: str
    key: str  # decoded
    size: int
    event_time: str
    sequencer: str = ""
    version_id: str | None = None


@dataclass
class Rejection:
    key: str
    reason: str


@dataclass
class IngestResult:
    """What one object produced; JSON-serializable so the idempotency layer can cache it."""

    key: str
    project: str | None = None
    dataset_type: str | None = None
    staged: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    ignored: str | None = None
    # Image lines still to stage: the handler stages a whole batch in few writes.
    pending: list[tuple[Line, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        if self.pending:
            raise ValueError("stage pending lines before caching a result")
        data = asdict(self)
        data.pop("pending")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestResult:
        rejections = [Rejection(**r) for r in data.get("rejections", [])]
        return cls(**{**data, "rejections": rejections})


def is_manifest_key(key: str) -> bool:
    """Cheap pre-check (before validation) used to give manifests their idempotency record."""
    return key.split("/")[1:2] == [MANIFESTS_FOLDER]


def ingest_object(
    event: S3ObjectEvent,
    *,
    settings: AppSettings,
    data_bucket: str,
    source: ObjectSource,
    store: StagingStore,
) -> IngestResult:
    """Validates one uploaded object. A manifest's lines are staged here; an image's line is returned
    in `pending` for the caller to stage with its neighbours. Bad input becomes rejections."""
    result = IngestResult(key=event.key)
    if event.bucket != data_bucket:
        result.ignored = f"bucket {event.bucket} is not the data bucket"
        return result
    try:
        route = route_key(event.key, settings.projects)
    except Rejected as rejected:
        result.project = event.key.split("/", 1)[0]
        result.rejections.append(Rejection(event.key, str(rejected)))
        return result
    if isinstance(route, IgnoredKey):
        result.ignored = route.reason
        return result
    result.project, result.dataset_type = route.project, route.dataset_type
    seq = event_seq(event.event_time, event.sequencer)
    if isinstance(route, ImageKey):
        try:
            info = source.read_image_info(event.bucket, event.key, event.version_id)
            check_image(info, event.size)
        except Rejected as rejected:
            result.rejections.append(Rejection(event.key, str(rejected)))
            return result
        line = image_line(source_ref(event.bucket, event.key), route.label, event.event_time)
        result.pending.append((line, seq))
        return result
    assert isinstance(route, ManifestKey)
    # Read and staged block by block, so a manifest of any size (up to 1 GB) never sits in memory.
    line_rejections = 0
    raw_lines = source.iter_lines(event.bucket, event.key, event.version_id)
    for start, block in _blocks(raw_lines, MANIFEST_BLOCK_LINES):
        content = read_manifest(block, data_bucket, first_line=start)
        for rejection in content.rejections:
            line_rejections += 1
            if line_rejections <= MAX_LINE_REJECTIONS_REPORTED:
                result.rejections.append(
                    Rejection(f"{event.key} line {rejection.line_number}", rejection.reason)
                )
        lines = content.lines
        if lines:
            store.stage(route.project, route.dataset_type, lines, seq)
        result.staged += len(lines)
    if line_rejections > MAX_LINE_REJECTIONS_REPORTED:
        result.rejections.append(
            Rejection(
                event.key,
                f"{line_rejections - MAX_LINE_REJECTIONS_REPORTED} more lines were rejected (only the first "
                f"{MAX_LINE_REJECTIONS_REPORTED} are listed); fix the manifest and upload it again",
            )
        )
    return result


def _blocks(items: Iterable[bytes], size: int) -> Iterator[tuple[int, list[bytes]]]:
    """(number of the first line, lines) blocks of at most `size` lines."""
    block: list[bytes] = []
    start = 1
    for item in items:
        block.append(item)
        if len(block) == size:
            yield start, block
            start += size
            block = []
    if block:
        yield start, block


def publish_rejections(publisher: Publisher, rejections: list[tuple[str | None, Rejection]]) -> int:
    """One "entries rejected" event per project and per REJECTIONS_PER_EVENT rejections."""
    by_project: dict[str, list[Rejection]] = {}
    for project, rejection in rejections:
        by_project.setdefault(project or "unknown", []).append(rejection)
    events = 0
    for project, items in by_project.items():
        for start in range(0, len(items), REJECTIONS_PER_EVENT):
            part = items[start : start + REJECTIONS_PER_EVENT]
            publisher.publish(
                EVENT_ENTRIES_REJECTED,
                project,
                count=len(part),
                rejections=[asdict(r) for r in part],
            )
            events += 1
    return events


# ---------------------------------------------------------------------------
# Applying staged lines
# ---------------------------------------------------------------------------


@dataclass
class FlushResult:
    project: str
    dataset_type: str
    status: str = "done"  # done | busy (lease held elsewhere or dataset busy) | more (deadline)
    calls: int = 0
    sent: int = 0
    added: int = 0
    with_errors: int = 0
    given_up: int = 0

    @property
    def needs_retry(self) -> bool:
        return self.status != "done"


@dataclass
class Flusher:
    store: StagingStore
    lease: DatasetLease
    gateway: DatasetGateway
    publisher: Publisher
    clock: Callable[[], float]
    max_bytes: int = chunking.UPDATE_ENTRIES_MAX_BYTES

    def flush(
        self, project: str, dataset_type: str, *, settings: AppSettings, owner: str, deadline: float
    ) -> FlushResult:
        result = FlushResult(project, dataset_type)
        lease_seconds = max(1.0, deadline - self.clock()) + 60
        if not self.lease.acquire(project, dataset_type, owner, lease_seconds):
            result.status = "busy"
            return result
        try:
            self._flush_locked(result, settings, owner, deadline)
        except DatasetBusy:
            result.status = "busy" if result.status == "done" else result.status
        finally:
            self.lease.release(project, dataset_type, owner)
        return result

    def _flush_locked(self, result: FlushResult, settings: AppSettings, owner: str, deadline: float) -> None:
        project, dataset_type = result.project, result.dataset_type
        batches = self._next_round(project, dataset_type)
        if not batches:
            return
        feature = settings.project(project).feature
        ensured = self.gateway.ensure_project(project, feature, deadline)
        if ensured.created_project or ensured.created_datasets:
            self.publisher.publish(
                EVENT_PROJECT_CREATED,
                project,
                project_arn=ensured.project_arn,
                feature=feature,
                created_project=ensured.created_project,
                created_datasets=ensured.created_datasets,
            )
        dataset_arn = ensured.datasets[dataset_type]
        before = self.gateway.wait_until_idle(dataset_arn, deadline)
        after = before
        sent_refs: list[str] = []
        try:
            while batches:
                for chunk in chunking.pack(newest_lines(batches), self.max_bytes):
                    result.calls += 1
                    after = self.gateway.update_entries(dataset_arn, chunking.encode(chunk), deadline)
                    result.sent += len(chunk)
                    sent_refs.extend(line.source_ref for line in chunk)
                # Every line of these items is now in the dataset: the items can go. Items staged
                # meanwhile are new items, untouched here, and applied by the next round.
                self.store.remove(project, dataset_type, batches)
                if self.clock() >= deadline:
                    result.status = "more"
                    break
                batches = self._next_round(project, dataset_type)
        except UpdateFailed as failed:
            result.given_up += self._count_failure(project, dataset_type, batches, failed)
            result.status = "more"
        except DatasetBusy:
            # Busy until the deadline (or our update still running): the round's items stay staged
            # and are sent again by the next flush (same source-ref = update, never a duplicate).
            result.status = "busy"
        result.added = _total(after) - _total(before)
        if sent_refs:
            # A dataset still busy cannot be listed; those lines are sent and checked again later.
            errors = (
                self.gateway.entries_with_errors(dataset_arn, sent_refs) if result.status != "busy" else []
            )
            result.with_errors = len(errors)
            self.publisher.publish(
                EVENT_ENTRIES_APPLIED,
                project,
                dataset_type=dataset_type,
                dataset_arn=dataset_arn,
                entries_sent=result.sent,
                entries_added=result.added,
                entries_updated=max(0, result.sent - result.added),
                update_calls=result.calls,
                entries_with_errors=result.with_errors,
                errors=[{"source-ref": e.source_ref, "errors": e.errors} for e in errors[:REPORTED_ERRORS]],
                dataset_stats=after.get("DatasetStats", {}),
            )

    def _next_round(self, project: str, dataset_type: str) -> list[StagedBatch]:
        """The oldest staged items. An item that was part of a failed update goes alone, so that a line
        the service refuses can only ever cost its own item's lines, never a whole round's."""
        batches = self.store.batches(project, dataset_type, MAX_LINES_PER_ROUND)
        suspects = [batch for batch in batches if batch.attempts > 0]
        return suspects[:1] if suspects else batches

    def _count_failure(
        self, project: str, dataset_type: str, batches: list[StagedBatch], failed: UpdateFailed
    ) -> int:
        """Counts a failed update on the staged items of the round; items that failed too often
        are dropped and their lines reported. Returns the number of lines given up."""
        exhausted = [b for b in batches if b.attempts + 1 >= MAX_UPDATE_ATTEMPTS]
        for batch in batches:
            if batch not in exhausted:
                self.store.count_attempt(project, batch)
        if not exhausted:
            return 0
        self.store.remove(project, dataset_type, exhausted)
        lost = newest_lines(exhausted)
        publish_rejections(
            self.publisher,
            [
                (
                    project,
                    Rejection(
                        line.source_ref,
                        f"the {dataset_type} dataset update failed {MAX_UPDATE_ATTEMPTS} times "
                        f"({failed.code}: {failed.message}); check the line and upload it again",
                    ),
                )
                for line in lost
            ],
        )
        return len(lost)


def _total(description: dict[str, Any]) -> int:
    return int(description.get("DatasetStats", {}).get("TotalEntries", 0))


__all__ = [
    "FlushResult",
    "Flusher",
    "IngestResult",
    "Line",
    "Rejection",
    "S3ObjectEvent",
    "ingest_object",
    "publish_rejections",
]
