"""Lazy asynchronous transitions: every due change is applied when the state is next read."""

from __future__ import annotations

from autopilot.engine.backend import Engine
from autopilot.engine.state import Dataset, Project, Version

CREATED_MESSAGE = "The dataset was successfully created."
UPDATED_MESSAGE = "The dataset was successfully updated."


def refresh(engine: Engine) -> bool:
    """Applies every due transition (call under the engine lock); tells whether anything changed."""
    now = engine.now()
    changed = False
    for key, project in list(engine.projects.items()):
        if project.delete_due is not None and now >= project.delete_due:
            del engine.projects[key]
            changed = True
            continue
        for dataset_type, dataset in list(project.datasets.items()):
            if dataset.delete_due is not None and now >= dataset.delete_due:
                del project.datasets[dataset_type]
                changed = True
                continue
            if dataset.pending is not None and now >= dataset.pending.due:
                apply_pending(dataset, now)
                changed = True
        for version in list(project.versions.values()):
            changed = apply_transitions(engine, project, version, now) or changed
    return changed


def apply_pending(dataset: Dataset, now: float) -> None:
    """Completes a dataset's pending create/update (called lazily once it is due)."""
    pending = dataset.pending
    assert pending is not None
    dataset.pending = None
    dataset.updated = now
    prefix = pending.kind  # CREATE or UPDATE
    if pending.failure_code is not None:
        dataset.status = f"{prefix}_FAILED"
        dataset.status_code = pending.failure_code
        dataset.status_message = pending.failure_message or "The dataset change failed."
        return
    if pending.replace_all:
        dataset.entries = {e.source_ref: e for e in pending.entries}
    else:
        for entry in pending.entries:
            dataset.entries[entry.source_ref] = entry
    dataset.status = f"{prefix}_COMPLETE"
    dataset.status_code = "SUCCESS"
    message = CREATED_MESSAGE if prefix == "CREATE" else UPDATED_MESSAGE
    dataset.status_message = f"{message} {pending.note}" if pending.note else message


def apply_transitions(engine: Engine, project: Project, version: Version, now: float) -> bool:
    """Completes due asynchronous transitions of one version (called lazily under the lock)."""
    changed = False
    if (
        version.status == "TRAINING_IN_PROGRESS"
        and version.train_outcome is not None
        and now >= version.train_due
    ):
        changed = True
        finished = max(version.train_due, version.training_end or now)
        version.training_end = finished
        if version.train_outcome == "ok":
            version.status = "TRAINING_COMPLETED"
            version.status_message = "The model is ready to run."
            scale = engine.config.time_scale
            elapsed = finished - version.training_started
            version.billable_seconds = round(elapsed / scale) if scale > 0 else round(elapsed)
        else:
            version.status = "TRAINING_FAILED"
            version.status_message = version.train_failure or "Training failed."
            version.f1 = None
            version.summary = None
    if version.transition_target is not None and now >= version.transition_due:
        changed = True
        target = version.transition_target
        version.transition_target = None
        if target == "DELETED":
            project.versions.pop(version.name, None)
            engine.forget_model(version.arn)
            return changed
        version.status = target
        version.status_message = version.transition_message or {
            "RUNNING": "The model is running.",
            "STOPPED": "The model is stopped.",
            "FAILED": "The model failed to start.",
        }.get(target, target)
        version.transition_message = None
    return changed
