"""Ingestion, step 1 (per S3 event): turn one uploaded object into staged lines.

Routes the key, validates, builds an image's Ground Truth line or reads a manifest's lines, and
stages them in the state table; bad input becomes rejections, published per project. Step 2,
applying the staged lines to the datasets, is `service.Flusher`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from lambdas.common.constants import EVENT_ENTRIES_REJECTED, FEATURE_CONTENT_MODERATION, MANIFESTS_FOLDER
from lambdas.common.settings import AppSettings
from lambdas.ingestion.adapter_lines import check_moderation_label, image_adapter_line, read_adapter_manifest
from lambdas.ingestion.keys import IgnoredKey, ImageKey, ManifestKey, Rejected, route_key, source_ref
from lambdas.ingestion.lines import Line, image_line, read_manifest
from lambdas.ingestion.staging import StagingStore, event_seq
from lambdas.ingestion.validation import TASK_IMAGE_LEVEL, TASK_NAMES, check_image

REJECTIONS_PER_EVENT = 50  # rejections per "entries rejected" event (SNS messages stay small)
MANIFEST_BLOCK_LINES = 5_000  # manifest lines validated and staged together
MAX_LINE_REJECTIONS_REPORTED = 1_000  # per manifest; the rest are counted in one more rejection


class Publisher(Protocol):
    def publish(self, event_type: str, project: str, **detail: Any) -> dict[str, Any]: ...


class TaskStore(Protocol):
    def project_task(self, project: str, proposed: str) -> str: ...


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
    key: str  # the S3 key of the uploaded object (the image, or the manifest)
    reason: str
    line: int | None = None  # the manifest line, for a rejected manifest line
    location: str | None = None  # the image's s3:// location, for lines the service refused


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
    project_settings = settings.project(route.project)
    configured = project_settings.task_type
    # CONTENT_MODERATION projects train adapters from manifests in the adapter format.
    adapter = project_settings.feature == FEATURE_CONTENT_MODERATION
    safe_folder = project_settings.moderation_safe_folder
    if isinstance(route, ImageKey):
        try:
            if adapter:
                _check_adapter_folder(route, safe_folder)
            info = source.read_image_info(event.bucket, event.key, event.version_id)
            check_image(info, event.size)
            if not adapter:
                _check_task(TASK_IMAGE_LEVEL, route.project, configured, store)
        except Rejected as rejected:
            result.rejections.append(Rejection(event.key, str(rejected)))
            return result
        ref = source_ref(event.bucket, event.key)
        line = (
            image_adapter_line(ref, route.label, safe_folder)
            if adapter
            else image_line(ref, route.label, event.event_time)
        )
        result.pending.append((line, seq))
        return result
    assert isinstance(route, ManifestKey)
    # Read and staged block by block, so a manifest of any size (up to 1 GB) never sits in memory.
    line_rejections = 0

    def reject_line(number: int, reason: str) -> None:
        nonlocal line_rejections
        line_rejections += 1
        if line_rejections <= MAX_LINE_REJECTIONS_REPORTED:
            result.rejections.append(Rejection(event.key, reason, line=number))

    raw_lines = source.iter_lines(event.bucket, event.key, event.version_id)
    for start, block in _blocks(raw_lines, MANIFEST_BLOCK_LINES):
        content = (
            read_adapter_manifest(block, data_bucket, first_line=start)
            if adapter
            else read_manifest(block, data_bucket, first_line=start)
        )
        for rejection in content.rejections:
            reject_line(rejection.line_number, rejection.reason)
        latest: dict[str, Line] = {}
        for number, entry in content.numbered:
            try:
                if entry.task is not None:
                    _check_task(entry.task, route.project, configured, store)
            except Rejected as rejected:
                reject_line(number, str(rejected))
                latest.pop(entry.source_ref, None)
                continue
            latest[entry.source_ref] = Line(entry.source_ref, entry.line)
        lines = list(latest.values())
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


def _check_adapter_folder(route: ImageKey, safe_folder: str) -> None:
    try:
        check_moderation_label(route.label, safe_folder)
    except Rejected as bad:
        folder = route.key.split("/")[1]
        raise Rejected(
            f"{route.key}: the folder {route.label!r} names the moderation label of the image, and {bad}. "
            f"Move the image to {route.project}/{folder}/<label>/..."
        ) from None


def _check_task(task: str, project: str, configured: str | None, store: TaskStore) -> None:
    """One task type per project: image-level labels or bounding boxes, never both."""
    expected = configured or store.project_task(project, task)
    if task != expected:
        how = "configured (task_type in cdk.json)" if configured else "fixed by its first entries"
        raise Rejected(
            f"the line has {TASK_NAMES[task]} but project {project} trains on {TASK_NAMES[expected]} "
            f"({how}); a project trains one kind of model, so upload it to a project for "
            f"{TASK_NAMES[task]} or convert it to {TASK_NAMES[expected]}"
        )


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
