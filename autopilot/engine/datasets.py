"""CreateDataset, DescribeDataset, DeleteDataset, UpdateDatasetEntries, DistributeDatasetEntries,
ListDatasetEntries, ListDatasetLabels."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from autopilot.engine import errors
from autopilot.engine.arns import dataset_arn
from autopilot.engine.backend import Engine
from autopilot.engine.clock import epoch_ms
from autopilot.engine.manifests import Entry, ManifestLineError, parse_manifest
from autopilot.engine.moderation import CONTENT_MODERATION
from autopilot.engine.pagination import paged_response
from autopilot.engine.registry import operation
from autopilot.engine.state import Dataset, PendingDatasetChange

MAX_ENTRIES = 250_000
MAX_LABELS = 250
DISTRIBUTE_FRACTION = 0.2
IN_PROGRESS = ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS")

UNSUPPORTED_FORMAT = "ERROR_MANIFEST_INACCESSIBLE_OR_UNSUPPORTED_FORMAT"
TOO_MANY_IN_ERROR = "ERROR_TOO_MANY_RECORDS_IN_ERROR: The manifest file has too many terminal errors."


def screen_changes(blob: bytes) -> tuple[list[Entry], list[tuple[int, ManifestLineError]]]:
    """The lines of a manifest or a change, split into entries and terminal content errors.

    Content errors (Developer Guide, "Terminal content errors"): a line over 100,000 characters, no
    or an invalid source-ref, invalid JSON contents, and a source-ref given more than once. Which
    of the repeated lines the service keeps is not documented: the engine keeps the first.
    """
    parsed, failures = parse_manifest(blob)
    entries: list[Entry] = []
    seen: set[str] = set()
    for entry in parsed:
        if entry.source_ref in seen:
            failures.append(
                (0, ManifestLineError("ERROR_DUPLICATE_SOURCE_REF", f"{entry.source_ref} appears twice."))
            )
            continue
        seen.add(entry.source_ref)
        entries.append(entry)
    return entries, failures


def content_failure(
    entries: list[Entry], failures: list[tuple[int, ManifestLineError]], fraction: float
) -> tuple[str, str] | None:
    """CLIENT_ERROR when there are no lines or more than `fraction` of them have content errors."""
    total = len(entries) + len(failures)
    if total == 0:
        return ("CLIENT_ERROR", f"{UNSUPPORTED_FORMAT}: the manifest has no JSON lines.")
    if len(failures) > fraction * total:
        return ("CLIENT_ERROR", TOO_MANY_IN_ERROR)
    return None


def _check_limits(existing: dict[str, Entry], incoming: list[Entry]) -> str | None:
    refs = set(existing) | {e.source_ref for e in incoming}
    if len(refs) > MAX_ENTRIES:
        return f"A dataset can hold at most {MAX_ENTRIES} images; this change would make {len(refs)}."
    merged = dict(existing)
    merged.update({e.source_ref: e for e in incoming})
    labels = {label for e in merged.values() for label in e.labels}
    if len(labels) > MAX_LABELS:
        return f"A dataset can have at most {MAX_LABELS} labels; this change would make {len(labels)}."
    return None


def _pending(
    engine: Engine, kind: str, entries: list[Entry], failure: tuple[str, str] | None
) -> PendingDatasetChange:
    """A create or update that completes (or fails with `failure`: code, message) once due."""
    seconds = (
        engine.config.dataset_create_seconds if kind == "CREATE" else engine.config.dataset_update_seconds
    )
    return PendingDatasetChange(
        kind=kind,
        due=engine.due(seconds),
        entries=entries,
        failure_code=failure[0] if failure else None,
        failure_message=failure[1] if failure else None,
    )


@operation("CreateDataset")
def create_dataset(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    project = engine.open_project(params["ProjectArn"])
    if project.feature == CONTENT_MODERATION and not engine.config.adapter_datasets:
        raise errors.invalid_parameter(
            f"The project {project.name} is a CONTENT_MODERATION project: adapters train from manifests "
            "given as CreateProjectVersion TrainingData and TestingData, not from datasets."
        )
    dataset_type = params["DatasetType"]
    if dataset_type in project.datasets:
        raise errors.already_exists(f"The project {project.name} already has a {dataset_type} dataset.")
    source = params.get("DatasetSource") or {}
    manifest = source.get("GroundTruthManifest")
    source_arn = source.get("DatasetArn")
    if manifest is not None and source_arn is not None:
        raise errors.invalid_parameter(
            "DatasetSource takes either GroundTruthManifest or DatasetArn, not both."
        )
    entries: list[Entry] = []
    failure: tuple[str, str] | None = None
    if manifest is not None:
        s3_object = manifest.get("S3Object")
        if not s3_object or "Bucket" not in s3_object or "Name" not in s3_object:
            raise errors.invalid_parameter("GroundTruthManifest.S3Object needs a Bucket and a Name.")
        blob = engine.read_s3_object(s3_object, detail=True)
        entries, failures = screen_changes(blob)
        failure = content_failure(entries, failures, engine.config.content_error_fraction)
    elif source_arn is not None:
        source_dataset = engine.dataset_by_arn(source_arn)
        if source_dataset.status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            raise errors.invalid_parameter(
                f"The source dataset is {source_dataset.status}; "
                "it must be CREATE_COMPLETE or UPDATE_COMPLETE."
            )
        entries = [Entry.from_state(e.to_state()) for e in source_dataset.entries.values()]
    if failure is None:
        limit = _check_limits({}, entries)
        if limit:
            failure = ("CLIENT_ERROR", limit)
    fault = engine.faults.take("dataset_update_failed", None, project.name)
    if fault is not None and failure is None:
        failure = ("SERVICE_ERROR", fault.message or "An internal error occurred while creating the dataset.")
    now = engine.now()
    dataset = Dataset(
        arn=dataset_arn(project.arn, dataset_type, epoch_ms(now)),
        project_name=project.name,
        dataset_type=dataset_type,
        created=now,
        updated=now,
        status="CREATE_IN_PROGRESS",
        status_message="The dataset is being created.",
        status_code="SUCCESS",
        tags=dict(params.get("Tags") or {}),
    )
    dataset.pending = _pending(engine, "CREATE", entries, failure)
    project.datasets[dataset_type] = dataset
    return {"DatasetArn": dataset.arn}


def stats(dataset: Dataset) -> dict[str, int]:
    entries = list(dataset.entries.values())
    return {
        "LabeledEntries": sum(1 for e in entries if e.labeled),
        "TotalEntries": len(entries),
        "TotalLabels": len({label for e in entries for label in e.labels}),
        "ErrorEntries": sum(1 for e in entries if e.has_errors),
    }


@operation("DescribeDataset", mutates=False)
def describe_dataset(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    dataset = engine.dataset_by_arn(params["DatasetArn"])
    return {
        "DatasetDescription": {
            "CreationTimestamp": dataset.created,
            "LastUpdatedTimestamp": dataset.updated,
            "Status": dataset.status,
            "StatusMessage": dataset.status_message,
            "StatusMessageCode": dataset.status_code,
            "DatasetStats": stats(dataset),
        }
    }


@operation("DeleteDataset")
def delete_dataset(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    dataset = engine.dataset_by_arn(params["DatasetArn"])
    if dataset.status in IN_PROGRESS:
        raise errors.in_use(f"The dataset is {dataset.status}; it can be deleted once the change ends.")
    project = engine.project_of(dataset)
    training = [v.name for v in project.versions.values() if v.status == "TRAINING_IN_PROGRESS"]
    if training:
        raise errors.in_use(f"Version(s) {', '.join(training)} are training from this dataset.")
    # Asynchronous (API reference, DeleteDataset): DELETE_IN_PROGRESS, then ResourceNotFoundException.
    dataset.status = "DELETE_IN_PROGRESS"
    dataset.status_message = "The dataset is being deleted."
    dataset.status_code = "SUCCESS"
    dataset.delete_due = engine.due(engine.config.delete_seconds)
    return {}


def _ready_for_change(dataset: Dataset) -> None:
    if dataset.status in IN_PROGRESS:
        raise errors.in_use(
            f"The dataset is {dataset.status}: one change at a time. Retry when DescribeDataset shows "
            "UPDATE_COMPLETE or UPDATE_FAILED."
        )
    if dataset.status == "CREATE_FAILED":
        raise errors.invalid_parameter("The dataset failed to be created; delete it and create it again.")


@operation("UpdateDatasetEntries")
def update_dataset_entries(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    dataset = engine.dataset_by_arn(params["DatasetArn"])
    _ready_for_change(dataset)
    blob: bytes = params["Changes"]["GroundTruth"]
    entries, failures = screen_changes(blob)
    if not entries and not failures:
        raise errors.invalid_parameter("Changes.GroundTruth holds no JSON lines.")
    # Terminal content errors remove their line and the rest is applied; too many fail the update
    # (Developer Guide, "Debugging terminal dataset errors").
    failure = content_failure(entries, failures, engine.config.content_error_fraction)
    if failure is None:
        limit = _check_limits(dataset.entries, entries)
        if limit:
            raise errors.limit_exceeded(limit)
    fault = engine.faults.take("dataset_update_failed", None, dataset.project_name)
    if fault is not None and failure is None:
        failure = ("SERVICE_ERROR", fault.message or "An internal error occurred while updating the dataset.")
    dataset.status = "UPDATE_IN_PROGRESS"
    dataset.status_message = "The dataset is being updated."
    dataset.status_code = "SUCCESS"
    dataset.updated = engine.now()
    dataset.pending = _pending(engine, "UPDATE", entries, failure)
    return {}


@operation("DistributeDatasetEntries")
def distribute_dataset_entries(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    found = [engine.dataset_by_arn(item["Arn"]) for item in params["Datasets"]]
    types = sorted(d.dataset_type for d in found)
    if types != ["TEST", "TRAIN"]:
        raise errors.invalid_parameter("Datasets must be one TRAIN and one TEST dataset.")
    if (
        found[0].project_name != found[1].project_name
        or found[0].arn.split("/dataset/")[0] != found[1].arn.split("/dataset/")[0]
    ):
        raise errors.invalid_parameter("The TRAIN and TEST datasets must belong to the same project.")
    train = next(d for d in found if d.dataset_type == "TRAIN")
    test = next(d for d in found if d.dataset_type == "TEST")
    for dataset in (train, test):
        if dataset.status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            raise errors.not_ready(
                f"The {dataset.dataset_type} dataset is {dataset.status}; both must be CREATE_COMPLETE or "
                "UPDATE_COMPLETE."
            )
    if test.entries:
        raise errors.invalid_parameter(
            "The TEST dataset must be empty to distribute the TRAIN dataset's entries."
        )
    entries = list(train.entries.values())
    labeled = [e for e in entries if e.labeled]
    if len(labeled) < 2:
        raise errors.invalid_parameter(
            "The TRAIN dataset needs at least 2 labeled entries to be distributed."
        )
    moved = _pick_test_entries(entries, engine.config.seed)
    keep = [e for e in entries if e.source_ref not in moved]
    to_test = [e for e in entries if e.source_ref in moved]
    now = engine.now()
    due = engine.due(engine.config.dataset_update_seconds)
    # A dataset_update_failed fault fails the distribution too: both datasets end UPDATE_FAILED.
    fault = engine.faults.take("dataset_update_failed", None, train.project_name)
    failure = (
        (fault.message or "An internal error occurred while distributing the entries.") if fault else None
    )
    for dataset, content in ((train, keep), (test, to_test)):
        dataset.status = "UPDATE_IN_PROGRESS"
        dataset.status_message = "The dataset is being updated."
        dataset.status_code = "SUCCESS"
        dataset.updated = now
        dataset.pending = PendingDatasetChange(
            kind="UPDATE",
            due=due,
            entries=content,
            replace_all=True,
            failure_code="SERVICE_ERROR" if failure else None,
            failure_message=failure,
        )
    return {}


def _pick_test_entries(entries: list[Entry], seed: int) -> set[str]:
    """20% of the entries, drawn per label group so every label is represented in both datasets."""
    rng = random.Random(seed)
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        key = "|".join(sorted(entry.labels)) if entry.labeled else ""
        groups.setdefault(key, []).append(entry)
    moved: set[str] = set()
    for key in sorted(groups):
        group = sorted(groups[key], key=lambda e: e.source_ref)
        rng.shuffle(group)
        count = round(len(group) * DISTRIBUTE_FRACTION)
        if count == 0 and len(group) >= 2 and key:
            count = 1
        moved.update(e.source_ref for e in group[:count])
    if not moved:
        moved.add(sorted(e.source_ref for e in entries)[0])
    return moved


def _readable(dataset: Dataset) -> None:
    if dataset.status == "CREATE_IN_PROGRESS":
        raise errors.not_ready("The dataset is still being created; retry when it is CREATE_COMPLETE.")
    if dataset.status == "CREATE_FAILED":
        raise errors.invalid_parameter("The dataset failed to be created and has no entries.")


@operation("ListDatasetEntries", mutates=False)
def list_dataset_entries(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    dataset = engine.dataset_by_arn(params["DatasetArn"])
    _readable(dataset)
    wanted = params.get("ContainsLabels")
    labeled = params.get("Labeled")
    contains = params.get("SourceRefContains")
    has_errors = params.get("HasErrors")
    selected = [
        e
        for e in dataset.entries.values()
        if (wanted is None or any(label in wanted for label in e.labels))
        and (labeled is None or e.labeled == labeled)
        and (contains is None or contains in e.source_ref)
        and (has_errors is None or e.has_errors == has_errors)
    ]
    context = ["ListDatasetEntries", dataset.arn, wanted, labeled, contains, has_errors]
    return paged_response(selected, params, context, "DatasetEntries", Entry.json_line)


@operation("ListDatasetLabels", mutates=False)
def list_dataset_labels(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    dataset = engine.dataset_by_arn(params["DatasetArn"])
    _readable(dataset)
    entry_counts: Counter[str] = Counter()
    box_counts: Counter[str] = Counter()
    for entry in dataset.entries.values():
        entry_counts.update(entry.labels)
        box_counts.update(box.label for box in entry.boxes)
    labels = sorted(entry_counts)

    def render(label: str) -> dict[str, Any]:
        stats = {"EntryCount": entry_counts[label], "BoundingBoxCount": box_counts[label]}
        return {"LabelName": label, "LabelStats": stats}

    context = ["ListDatasetLabels", dataset.arn]
    return paged_response(labels, params, context, "DatasetLabelDescriptions", render)
