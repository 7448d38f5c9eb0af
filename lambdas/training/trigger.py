"""Should this project train now? If so, take its lock and start the training workflow.

A project trains when its datasets gained at least `min_new_labeled_entries` labeled entries
(TRAIN + TEST) since the last training started (or when forced), none of its datasets is being
created or updated, and no training of it is in flight. The lock (a conditional write in the
state table) makes "never two at once" hold even when two triggers race.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from lambdas.common import clock
from lambdas.common.constants import (
    EVENT_TRAINING_SKIPPED,
    FEATURE_CONTENT_MODERATION,
    TRAINING_OUTPUT_FOLDER,
)
from lambdas.common.production import DatasetSnapshot
from lambdas.common.settings import AppSettings, ProjectSettings
from lambdas.training import naming
from lambdas.training.adapters import (
    ManifestInfo,
    ManifestReader,
    adapter_description,
    adapter_snapshot,
    report_discovered_versions,
)
from lambdas.training.contracts import AdapterInput, TrainingInput, TriggerInfo, WorkflowSettings
from lambdas.training.rekognition import DatasetInfo, ProjectInfo, TrainingRekognition
from lambdas.training.state import TrainingStateStore

BUSY_STATUSES = frozenset({"CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS"})
UNUSABLE_STATUSES = frozenset({"CREATE_FAILED"})

STATUS_STARTED = "STARTED"
STATUS_SKIPPED = "SKIPPED"


@dataclass(frozen=True)
class TriggerRequest:
    project: str
    force: bool = False
    source: str = "schedule"


@dataclass(frozen=True)
class Decision:
    train: bool
    reason: str
    new_entries: int = 0


@dataclass(frozen=True)
class TriggerResult:
    project: str
    status: str
    reason: str
    execution_arn: str | None = None
    version_name: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The fields, with the entries of `detail` beside them."""
        data = asdict(self)
        detail = data.pop("detail")
        return {**data, **detail}


class Publisher(Protocol):
    def publish(self, event_type: str, project: str, **detail: Any) -> dict[str, Any]: ...


class Starter(Protocol):
    def start(self, name: str, payload: dict[str, Any]) -> str: ...


def snapshot_of(datasets: dict[str, DatasetInfo]) -> DatasetSnapshot:
    train, test = datasets.get("TRAIN"), datasets.get("TEST")
    return DatasetSnapshot(
        train_labeled_entries=train.labeled_entries if train else 0,
        test_labeled_entries=test.labeled_entries if test else 0,
        train_total_entries=train.total_entries if train else 0,
        test_total_entries=test.total_entries if test else 0,
        labels=train.total_labels if train else 0,
    )


def new_labeled_entries(current: DatasetSnapshot, last: DatasetSnapshot | None) -> int:
    """Labeled entries gained since `last`; a shrunken dataset (recreated) counts in full."""
    if last is None or current.labeled_entries < last.labeled_entries:
        return current.labeled_entries
    return current.labeled_entries - last.labeled_entries


def decide(
    project: str,
    settings: ProjectSettings,
    *,
    datasets: dict[str, DatasetInfo],
    last_counts: DatasetSnapshot | None,
    force: bool,
    lock_holder: str | None,
) -> Decision:
    """Pure decision; the lock's conditional write still arbitrates races after it."""
    train = datasets.get("TRAIN")
    if train is None:
        return Decision(
            False,
            f"project {project!r} has no TRAIN dataset yet: upload images under {project}/train/<label>/",
        )
    if "TEST" not in datasets:
        return Decision(
            False,
            f"project {project!r} has no TEST dataset: upload at least one image under "
            f"{project}/test/<label>/ "
            "(an empty TEST dataset is filled from TRAIN automatically)",
        )
    for info in datasets.values():
        if info.status in BUSY_STATUSES:
            return Decision(
                False, f"{info.dataset_type} dataset is {info.status}; training waits until it completes"
            )
        if info.status in UNUSABLE_STATUSES:
            return Decision(
                False,
                f"{info.dataset_type} dataset is {info.status} ({info.status_message or 'no message'}); "
                "recreate it before training",
            )
    return decide_on_counts(
        project,
        settings,
        current=snapshot_of(datasets),
        last_counts=last_counts,
        force=force,
        lock_holder=lock_holder,
    )


def decide_adapter(
    project: str,
    settings: ProjectSettings,
    *,
    train: ManifestInfo | None,
    test: ManifestInfo | None,
    has_datasets: bool,
    last_counts: DatasetSnapshot | None,
    force: bool,
    lock_holder: str | None,
) -> Decision:
    """A CONTENT_MODERATION project trains an adapter from its manifests (pure, like `decide`)."""
    if has_datasets:
        return Decision(
            False,
            f"project {project!r} has datasets, and an adapter trains from manifests only "
            "(CreateProjectVersion with TrainingData assets needs a project without datasets): delete its "
            "datasets (DeleteDataset) or use a new project",
        )
    if train is None or train.entries == 0:
        return Decision(
            False,
            f"project {project!r} has no training manifest yet: upload images under "
            f"{project}/train/<label>/ (a moderation label) and "
            f"{project}/train/{settings.moderation_safe_folder}/, or adapter manifests under "
            f"{project}/manifests/train/",
        )
    return decide_on_counts(
        project,
        settings,
        current=adapter_snapshot(train, test),
        last_counts=last_counts,
        force=force,
        lock_holder=lock_holder,
    )


def decide_on_counts(
    project: str,
    settings: ProjectSettings,
    *,
    current: DatasetSnapshot,
    last_counts: DatasetSnapshot | None,
    force: bool,
    lock_holder: str | None,
) -> Decision:
    """The lock and the new-entries threshold, shared by models and adapters."""
    if lock_holder:
        return Decision(False, f"a training of {project!r} is already in flight ({lock_holder})")
    gained = new_labeled_entries(current, last_counts)
    if force:
        return Decision(True, f"forced ({gained} new labeled entries)", gained)
    if current.labeled_entries == 0:
        return Decision(False, f"no labeled entries in {project!r} yet", 0)
    if gained >= settings.min_new_labeled_entries:
        return Decision(
            True, f"{gained} new labeled entries (threshold {settings.min_new_labeled_entries})", gained
        )
    return Decision(
        False,
        f"only {gained} new labeled entries since the last training "
        f"(threshold {settings.min_new_labeled_entries}); send a forced request to train anyway",
        gained,
    )


def settings_contract(settings: ProjectSettings) -> WorkflowSettings:
    """The per-project values the state machine reads from its input."""
    return WorkflowSettings(
        feature=settings.feature,
        poll_seconds=settings.training_poll_seconds,
        max_polls=naming.training_polls(settings),
        max_split_polls=naming.split_polls(settings),
        model_poll_seconds=settings.model_poll_seconds,
        max_model_polls=naming.model_start_polls(settings),
        f1_floor=settings.f1_floor,
        promotion_margin=settings.promotion_margin,
        label_f1_floors=dict(settings.label_f1_floors),
        max_label_f1_drop=settings.max_label_f1_drop,
        retain_versions=settings.retain_versions,
        min_inference_units=settings.min_inference_units,
        # Without auto-scaling, the ceiling equals the floor.
        max_inference_units=settings.max_inference_units or settings.min_inference_units,
        moderation_confidence_threshold=(
            settings.moderation_confidence_threshold
            if settings.feature == FEATURE_CONTENT_MODERATION
            else None
        ),
    )


def workflow_settings(settings: ProjectSettings) -> dict[str, Any]:
    return settings_contract(settings).model_dump()


def execution_input(
    *,
    project: ProjectInfo,
    datasets: dict[str, DatasetInfo],
    settings: ProjectSettings,
    version_name: str,
    lock_token: str,
    request: TriggerRequest,
    reason: str,
    manifests: tuple[ManifestInfo, ManifestInfo | None] | None = None,
) -> dict[str, Any]:
    """The workflow's input: datasets for a model, or (`manifests`: train, test) for an adapter."""
    adapter = None
    if manifests is not None:
        train, test = manifests
        adapter = AdapterInput(
            train_manifest=train.s3_object(),
            test_manifest=test.s3_object() if test else None,
            description=adapter_description(train, test),
        )
        snapshot = adapter_snapshot(train, test)
    else:
        snapshot = snapshot_of(datasets)
    return TrainingInput(
        project=project.name,
        project_arn=project.arn,
        train_dataset_arn=datasets["TRAIN"].arn if adapter is None else None,
        test_dataset_arn=datasets["TEST"].arn if adapter is None else None,
        adapter=adapter,
        version_name=version_name,
        lock_token=lock_token,
        output_prefix=f"{project.name}/{TRAINING_OUTPUT_FOLDER}/",
        trigger=TriggerInfo(source=request.source, force=request.force, reason=reason),
        snapshot=snapshot.to_dict(),
        settings=settings_contract(settings),
    ).model_dump()


def request_training(
    request: TriggerRequest,
    *,
    settings: AppSettings,
    rekognition: TrainingRekognition,
    store: TrainingStateStore,
    starter: Starter,
    publisher: Publisher,
    manifests: ManifestReader | None = None,
    now: datetime | None = None,
) -> TriggerResult:
    now = now or clock.utcnow()
    project_settings = settings.project(request.project)

    def skipped(reason: str, **detail: Any) -> TriggerResult:
        publisher.publish(
            EVENT_TRAINING_SKIPPED, request.project, reason=reason, source=request.source, force=request.force
        )
        return TriggerResult(request.project, STATUS_SKIPPED, reason, detail=detail)

    project = rekognition.describe_project(request.project)
    if project is None:
        return skipped(
            f"project {request.project!r} does not exist in Rekognition yet: upload labeled images under "
            f"{request.project}/train/<label>/ to create it"
        )
    record = store.get_training(request.project)
    holder = record.lock_token if record.locked(int(now.timestamp())) else None
    datasets: dict[str, DatasetInfo] = {}
    adapter_manifests: tuple[ManifestInfo, ManifestInfo | None] | None = None
    if project_settings.feature == FEATURE_CONTENT_MODERATION and manifests is not None:
        # Versions Rekognition made on its own (AutoUpdate) are reported, not ignored.
        report_discovered_versions(
            request.project, rekognition.list_versions(project.arn), store=store, publisher=publisher, now=now
        )
        train, test = manifests.head(request.project, "TRAIN"), manifests.head(request.project, "TEST")
        decision = decide_adapter(
            request.project,
            project_settings,
            train=train,
            test=test,
            has_datasets=bool(project.datasets),
            last_counts=record.last_counts,
            force=request.force,
            lock_holder=holder,
        )
        if train is not None:
            adapter_manifests = (train, test)
        counts = adapter_snapshot(train, test) if train is not None else None
    else:
        datasets = {
            dataset_type: rekognition.describe_dataset(dataset_type, arn)
            for dataset_type, arn in sorted(project.datasets.items())
        }
        decision = decide(
            request.project,
            project_settings,
            datasets=datasets,
            last_counts=record.last_counts,
            force=request.force,
            lock_holder=holder,
        )
        counts = snapshot_of(datasets)
    if not decision.train:
        return skipped(decision.reason, new_entries=decision.new_entries)

    token = naming.execution_name(request.project, now)
    version = naming.version_name(request.project, now)
    if not store.acquire_lock(
        request.project,
        token=token,
        version_name=version,
        now=now,
        ttl_seconds=naming.lock_ttl_seconds(settings),
    ):
        return skipped(f"a training of {request.project!r} is already in flight")
    payload = execution_input(
        project=project,
        datasets=datasets,
        settings=project_settings,
        version_name=version,
        lock_token=token,
        request=request,
        reason=decision.reason,
        manifests=adapter_manifests,
    )
    try:
        execution_arn = starter.start(token, payload)
    except BaseException:
        store.release_lock(
            request.project,
            token=token,
            outcome="FAILED",
            reason="the workflow could not be started",
            now=now,
        )
        raise
    store.confirm_start(
        request.project, token=token, execution_arn=execution_arn, counts=counts or DatasetSnapshot(), now=now
    )
    return TriggerResult(
        request.project,
        STATUS_STARTED,
        decision.reason,
        execution_arn=execution_arn,
        version_name=version,
        detail={"new_entries": decision.new_entries},
    )
