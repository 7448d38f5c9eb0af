"""The engine's resources as plain dataclasses, with JSON (de)serialisation for persistence.

Asynchronous transitions are stored as a target status and a due time (epoch seconds); the
engine applies them lazily whenever a resource is read, so the state survives restarts and no
timer threads are needed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from autopilot.engine.manifests import Entry


def _state(record: Any, **nested: Any) -> dict[str, Any]:
    """A record's fields as they are, the records it holds replaced by their state (`nested`)."""
    return {item.name: nested.get(item.name, getattr(record, item.name)) for item in fields(record)}


@dataclass
class PendingDatasetChange:
    kind: str  # "CREATE" or "UPDATE"
    due: float
    entries: list[Entry] = field(default_factory=list)  # added or replaced by source-ref
    replace_all: bool = False  # the entries replace the dataset's entries (distribution)
    failure_code: str | None = None  # SERVICE_ERROR / CLIENT_ERROR when the change ends *_FAILED
    failure_message: str | None = None
    note: str | None = None  # appended to the success message (e.g. skipped lines)

    def to_state(self) -> dict[str, Any]:
        data = asdict(self)
        data["entries"] = [e.to_state() for e in self.entries]
        return data

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> PendingDatasetChange:
        entries = [Entry.from_state(e) for e in data.pop("entries")]
        return cls(entries=entries, **data)


@dataclass
class Dataset:
    arn: str
    project_name: str
    dataset_type: str
    created: float
    updated: float
    status: str
    status_message: str
    status_code: str
    entries: dict[str, Entry] = field(default_factory=dict)
    pending: PendingDatasetChange | None = None
    tags: dict[str, str] = field(default_factory=dict)
    delete_due: float | None = None  # DELETE_IN_PROGRESS until then, then gone

    def to_state(self) -> dict[str, Any]:
        return _state(
            self,
            entries=[e.to_state() for e in self.entries.values()],
            pending=self.pending.to_state() if self.pending else None,
        )

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Dataset:
        data = dict(data)
        entries = [Entry.from_state(e) for e in data.pop("entries")]
        pending = data.pop("pending")
        dataset = cls(**data)
        dataset.entries = {e.source_ref: e for e in entries}
        dataset.pending = PendingDatasetChange.from_state(pending) if pending else None
        return dataset


@dataclass
class Version:
    arn: str
    name: str
    project_name: str
    created: float
    status: str
    status_message: str
    feature: str
    output_config: dict[str, Any]
    description: str | None = None
    feature_config: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    kms_key_id: str | None = None
    training_data: dict[str, Any] | None = None
    testing_data: dict[str, Any] | None = None
    training_output: dict[str, Any] | None = None
    testing_output: dict[str, Any] | None = None
    min_inference_units: int | None = None
    max_inference_units: int | None = None
    training_started: float = 0.0
    training_end: float | None = None
    billable_seconds: int | None = None
    f1: float | None = None
    summary: dict[str, str] | None = None
    manifest_summary: dict[str, str] | None = None
    # Validation result manifests (TrainingDataResult / TestingDataResult .Validation).
    training_validation: dict[str, Any] | None = None
    testing_validation: dict[str, Any] | None = None
    # Asynchronous work.
    train_due: float = 0.0
    train_outcome: str | None = None  # None while computing, "ok" or "failed"
    train_failure: str | None = None
    transition_target: str | None = None  # RUNNING / FAILED / STOPPED / DELETED
    transition_due: float = 0.0
    transition_message: str | None = None

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Version:
        return cls(**data)


@dataclass
class Project:
    name: str
    arn: str
    region: str
    created: float
    status: str
    feature: str
    auto_update: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    datasets: dict[str, Dataset] = field(default_factory=dict)  # by TRAIN / TEST
    versions: dict[str, Version] = field(default_factory=dict)  # by version name
    delete_due: float | None = None

    def to_state(self) -> dict[str, Any]:
        return _state(
            self,
            datasets={k: d.to_state() for k, d in self.datasets.items()},
            versions={k: v.to_state() for k, v in self.versions.items()},
        )

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Project:
        data = dict(data)
        datasets = {k: Dataset.from_state(d) for k, d in data.pop("datasets").items()}
        versions = {k: Version.from_state(v) for k, v in data.pop("versions").items()}
        return cls(datasets=datasets, versions=versions, **data)
