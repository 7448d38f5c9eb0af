"""Ingestion use cases: turn one uploaded object into staged lines (`ingest.ingest_object`), and
apply a dataset's staged lines with as few UpdateDatasetEntries calls as possible, one update at a
time per dataset (`Flusher`, here).

Two steps, so that S3 events never wait on Rekognition:

1. `ingest_object` (per S3 event): route the key, validate, build or read the Ground Truth lines
   and stage them in the state table. The SQS message is then done.
2. `Flusher.flush` (per flush request, sent to the same queue with a delay after step 1): under
   the dataset's lease, read everything staged, skip lines not newer than the last one applied
   for their source-ref, pack the rest into <= 5 MB calls, send them one after the other waiting
   for UPDATE_COMPLETE, verify which lines are in the dataset (Rekognition removes lines with
   content errors silently), remember their ordering tokens, remove the staged items, and report
   rejections, errors and counts. Only a line's own fault costs the line: a CLIENT_ERROR update
   is halved until the failing line stands alone; service errors are waited out with backoff for
   a bounded time, the lines staying staged.

Everything uploaded during the delay and during a running update is applied by the next flush,
so a burst costs about ceil(total bytes / 5 MB) calls instead of one call per image.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from lambdas.common.constants import (
    EVENT_ENTRIES_APPLIED,
    EVENT_PROJECT_CREATED,
    FEATURE_CONTENT_MODERATION,
    INGESTION_RETRY_HOURS_DEFAULT,
    SQS_MAX_DELAY_SECONDS,
)
from lambdas.common.moderation import adapter_manifest_key
from lambdas.common.settings import AppSettings
from lambdas.ingestion import chunking
from lambdas.ingestion.adapter_manifests import AdapterManifests, ManifestConflict
from lambdas.ingestion.datasets import DatasetBusy, DatasetGateway, UpdateFailed, is_service_error
from lambdas.ingestion.ingest import (
    IngestResult,
    Publisher,
    Rejection,
    S3ObjectEvent,
    ingest_object,
    publish_rejections,
)
from lambdas.ingestion.keys import parse_source_ref
from lambdas.ingestion.lines import Line
from lambdas.ingestion.staging import DatasetLease, RetryStreak, StagedBatch, StagingStore, newest_versions

DEFAULT_RETRY_HOURS = INGESTION_RETRY_HOURS_DEFAULT  # then the alarm (configurable)
MAX_LINES_PER_ROUND = 60_000  # staged lines read per round (~12 calls' worth of typical lines)
REPORTED_ERRORS = 20  # entries with errors listed in one "entries applied" event


REMOVED_REASON = (
    "Rekognition left this line out of the {dataset_type} dataset: a terminal content error (a line "
    "over 100,000 characters, a missing or invalid source-ref, invalid JSON line contents, or the "
    "source-ref twice in one change; Developer Guide, 'Terminal content errors'); the service does not "
    "say which. Fix the line and upload it again"
)


class ServiceTrouble(Exception):
    """A failure that is the service's, not the lines': waited out with backoff, never a rejection."""


@dataclass
class FlushResult:
    project: str
    dataset_type: str
    # done | busy (lease held elsewhere or dataset busy) | more (deadline) | retry (service error:
    # try again after `retry_after` seconds) | stalled (service errors for longer than the bound)
    status: str = "done"
    calls: int = 0
    sent: int = 0
    added: int = 0  # verified new entries
    updated: int = 0  # verified entries that existed before
    removed: int = 0  # lines the service left out (content errors), published as rejections
    refused: int = 0  # lines whose update failed with CLIENT_ERROR on their own, published as rejections
    older: int = 0  # lines skipped because a newer line of the same source-ref was already applied
    with_errors: int = 0
    retry_after: int | None = None
    trouble: str | None = None

    @property
    def needs_retry(self) -> bool:
        return self.status in ("busy", "more", "retry")


@dataclass
class _Round:
    """What one flush applied, for the "entries applied" event."""

    dataset_arn: str
    sent_refs: list[str] = field(default_factory=list)
    after: dict[str, Any] = field(default_factory=dict)
    rejections: list[tuple[str | None, Rejection]] = field(default_factory=list)


@dataclass
class Flusher:
    store: StagingStore
    lease: DatasetLease
    gateway: DatasetGateway
    publisher: Publisher
    clock: Callable[[], float]
    max_bytes: int = chunking.UPDATE_ENTRIES_MAX_BYTES
    retry_bound_seconds: float = DEFAULT_RETRY_HOURS * 3600
    retry_base_seconds: float = 20.0  # the first wait after a service error (the flush delay)
    wall_clock: Callable[[], float] = time.time
    manifests: AdapterManifests | None = None  # CONTENT_MODERATION projects: manifests in S3

    def flush(
        self, project: str, dataset_type: str, *, settings: AppSettings, owner: str, deadline: float
    ) -> FlushResult:
        result = FlushResult(project, dataset_type)
        lease_seconds = max(1.0, deadline - self.clock()) + 60
        if not self.lease.acquire(project, dataset_type, owner, lease_seconds):
            result.status = "busy"
            return result
        try:
            self._flush_locked(result, settings, deadline)
        finally:
            self.lease.release(project, dataset_type, owner)
        return result

    def _flush_locked(self, result: FlushResult, settings: AppSettings, deadline: float) -> None:
        project, dataset_type = result.project, result.dataset_type
        batches = self.store.batches(project, dataset_type, MAX_LINES_PER_ROUND)
        if not batches:
            return
        applied: _Round | None = None
        if settings.project(project).feature == FEATURE_CONTENT_MODERATION and self.manifests is not None:
            self._flush_manifest(result, settings, batches, self.manifests, deadline)
            return
        try:
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
            applied = _Round(ensured.datasets[dataset_type])
            round_applied = applied
            self._run_rounds(
                result,
                batches,
                deadline,
                lambda round_: self._apply_round(result, round_applied, round_, deadline),
            )
        except DatasetBusy:
            # Busy until the deadline (or our update still running): the round's items stay staged
            # and are sent again by the next flush (same source-ref = update, never a duplicate).
            result.status = "busy"
        except (ServiceTrouble, UpdateFailed, ClientError) as error:
            if isinstance(error, ClientError) and not is_service_error(error):
                raise
            self._wait_out(result, str(error))
        if applied is not None:
            self._report(result, applied)

    def _run_rounds(
        self,
        result: FlushResult,
        batches: list[StagedBatch],
        deadline: float,
        apply_round: Callable[[list[StagedBatch]], None],
    ) -> None:
        """Applies staged items round by round until none are left or the deadline passes."""
        project, dataset_type = result.project, result.dataset_type
        while batches:
            apply_round(batches)
            # Every line of these items is applied, or was refused and reported: the items can go.
            # Items staged meanwhile are new items, applied by the next round.
            self.store.remove(project, dataset_type, batches)
            if self.clock() >= deadline:
                result.status = "more"
                break
            batches = self.store.batches(project, dataset_type, MAX_LINES_PER_ROUND)
        if self.store.retry_streak(project, dataset_type) is not None:
            self.store.clear_retry_streak(project, dataset_type)

    def _flush_manifest(
        self,
        result: FlushResult,
        settings: AppSettings,
        batches: list[StagedBatch],
        manifests: AdapterManifests,
        deadline: float,
    ) -> None:
        """An adapter project: the staged lines become a new version of its manifest object in S3
        (no dataset; the same merge, ordering tokens and clean-up as a dataset update)."""
        project, dataset_type = result.project, result.dataset_type
        key = adapter_manifest_key(project, dataset_type)
        target = f"s3://{manifests.bucket}/{key}"
        written = None
        try:
            ensured = self.gateway.ensure_adapter_project(
                project, auto_update=settings.project(project).auto_update
            )
            if ensured.created_project:
                self.publisher.publish(
                    EVENT_PROJECT_CREATED,
                    project,
                    project_arn=ensured.project_arn,
                    feature=FEATURE_CONTENT_MODERATION,
                    created_project=True,
                    created_datasets=[],
                )

            def apply_round(round_: list[StagedBatch]) -> None:
                nonlocal written
                versions = newest_versions(round_)
                known = self.store.applied_seqs(
                    project, dataset_type, target, [line.source_ref for line, _ in versions]
                )
                fresh = [(line, seq) for line, seq in versions if known.get(line.source_ref, "") < seq]
                result.older += len(versions) - len(fresh)
                if fresh:
                    written = manifests.apply(key, [line for line, _ in fresh])
                    result.calls += 1
                    result.sent += len(fresh)
                    result.added += written.added
                    result.updated += written.updated
                    self.store.record_applied(
                        project, dataset_type, target, [(line.source_ref, seq) for line, seq in fresh]
                    )

            self._run_rounds(result, batches, deadline, apply_round)
        except DatasetBusy:
            result.status = "busy"
        except ManifestConflict as conflict:
            self._wait_out(result, str(conflict))
        except ClientError as error:
            if not is_service_error(error):
                raise
            self._wait_out(result, str(error))
        if written is not None:
            self.publisher.publish(
                EVENT_ENTRIES_APPLIED,
                project,
                dataset_type=dataset_type,
                manifest=target,
                manifest_version=written.version_id,
                manifest_entries=written.entries,
                entries_sent=result.sent,
                entries_added=result.added,
                entries_updated=result.updated,
                entries_older_skipped=result.older,
                manifest_writes=result.calls,
            )

    def _apply_round(
        self, result: FlushResult, applied: _Round, batches: list[StagedBatch], deadline: float
    ) -> None:
        project, dataset_type = result.project, result.dataset_type
        versions = newest_versions(batches)
        known = self.store.applied_seqs(
            project, dataset_type, applied.dataset_arn, [line.source_ref for line, _ in versions]
        )
        fresh = [(line, seq) for line, seq in versions if known.get(line.source_ref, "") < seq]
        result.older += len(versions) - len(fresh)
        seqs = dict((line.source_ref, seq) for line, seq in fresh)
        lines = [line for line, _ in fresh]
        for chunk in chunking.pack(lines, self.max_bytes):
            self._send(result, applied, chunk, set(known), seqs, deadline)

    def _send(
        self,
        result: FlushResult,
        applied: _Round,
        chunk: list[Line],
        known: set[str],
        seqs: dict[str, str],
        deadline: float,
    ) -> None:
        """One update; on CLIENT_ERROR the chunk is halved until the failing line stands alone."""
        project, dataset_type = result.project, result.dataset_type
        result.calls += 1
        try:
            outcome = self.gateway.update_entries(applied.dataset_arn, chunking.encode(chunk), deadline)
        except UpdateFailed as failed:
            if failed.code != "CLIENT_ERROR":
                raise ServiceTrouble(f"the dataset update failed ({failed.code}: {failed.message})") from None
            if len(chunk) > 1:
                half = len(chunk) // 2
                self._send(result, applied, chunk[:half], known, seqs, deadline)
                self._send(result, applied, chunk[half:], known, seqs, deadline)
                return
            (line,) = chunk
            result.refused += 1
            applied.rejections.append(
                (
                    project,
                    _service_rejection(
                        line.source_ref,
                        f"Rekognition refused the line ({failed.code}: {failed.message}); fix it and upload "
                        "it again",
                    ),
                )
            )
            self.store.record_applied(
                project, dataset_type, applied.dataset_arn, [(line.source_ref, seqs[line.source_ref])]
            )
            return
        applied.after = outcome.after
        refs = [line.source_ref for line in chunk]
        new = [ref for ref in refs if ref not in known]
        grown = _total(outcome.after) - _total(outcome.before)
        # Count check first; when it does not add up, look the lines up (Developer Guide: content
        # errors are removed silently, and no API reports them).
        present = set(refs) if grown == len(new) else self.gateway.present(applied.dataset_arn, refs)
        result.sent += len(chunk)
        result.added += len([ref for ref in new if ref in present])
        result.updated += len([ref for ref in refs if ref in known and ref in present])
        for ref in refs:
            if ref not in present:
                result.removed += 1
                applied.rejections.append(
                    (project, _service_rejection(ref, REMOVED_REASON.format(dataset_type=dataset_type)))
                )
        applied.sent_refs.extend(ref for ref in refs if ref in present)
        self.store.record_applied(
            project, dataset_type, applied.dataset_arn, [(ref, seqs[ref]) for ref in refs]
        )
        known.update(present)

    def _wait_out(self, result: FlushResult, trouble: str) -> None:
        """A service error: try again later with backoff, until the bound; then stop and alarm."""
        project, dataset_type = result.project, result.dataset_type
        now = self.wall_clock()
        streak = self.store.retry_streak(project, dataset_type) or RetryStreak(now, 0)
        streak = RetryStreak(streak.since, streak.attempts + 1)
        self.store.save_retry_streak(project, dataset_type, streak)
        result.trouble = trouble
        if now - streak.since >= self.retry_bound_seconds:
            # The staged lines stay staged (never dropped); the handler's metric raises the alarm, and
            # the next upload to this dataset (or a flush request) tries again.
            result.status = "stalled"
            return
        result.status = "retry"
        result.retry_after = retry_delay(streak.attempts, self.retry_base_seconds)

    def _report(self, result: FlushResult, applied: _Round) -> None:
        project, dataset_type = result.project, result.dataset_type
        publish_rejections(self.publisher, applied.rejections)
        if not applied.sent_refs:
            return
        # A dataset still busy cannot be listed; its errors are reported after the next update.
        errors = (
            self.gateway.entries_with_errors(applied.dataset_arn, applied.sent_refs)
            if result.status != "busy"
            else []
        )
        result.with_errors = len(errors)
        self.publisher.publish(
            EVENT_ENTRIES_APPLIED,
            project,
            dataset_type=dataset_type,
            dataset_arn=applied.dataset_arn,
            entries_sent=result.sent,
            entries_added=result.added,
            entries_updated=result.updated,
            entries_removed=result.removed,
            entries_refused=result.refused,
            entries_older_skipped=result.older,
            update_calls=result.calls,
            entries_with_errors=result.with_errors,
            errors=[{"source-ref": e.source_ref, "errors": e.errors} for e in errors[:REPORTED_ERRORS]],
            dataset_stats=applied.after.get("DatasetStats", {}),
        )


def retry_delay(attempts: int, base_seconds: float) -> int:
    """Seconds before the next try after `attempts` consecutive service errors: the base doubling
    with each attempt, up to the 15 minutes an SQS message can be delayed, with jitter."""
    delay = min(float(SQS_MAX_DELAY_SECONDS), base_seconds * 2 ** max(0, min(attempts - 1, 16)))
    return int(min(SQS_MAX_DELAY_SECONDS, delay * random.uniform(0.8, 1.2)))


def _service_rejection(source_ref: str, reason: str) -> Rejection:
    try:
        _, key = parse_source_ref(source_ref)
    except ValueError:
        key = source_ref
    return Rejection(key, reason, location=source_ref)


def _total(description: dict[str, Any]) -> int:
    return int(description.get("DatasetStats", {}).get("TotalEntries", 0))


__all__ = [
    "SQS_MAX_DELAY_SECONDS",
    "FlushResult",
    "Flusher",
    "IngestResult",
    "Line",
    "Rejection",
    "S3ObjectEvent",
    "ingest_object",
    "publish_rejections",
]
