"""Training decisions for CONTENT_MODERATION projects: adapters from manifests, the workflow input,
and versions the workflow did not create (no AWS)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lambdas.common.constants import EVENT_VERSION_DISCOVERED
from lambdas.common.production import DatasetSnapshot
from lambdas.common.settings import ProjectSettings
from lambdas.training import naming, trigger
from lambdas.training.adapters import ManifestInfo, report_discovered_versions
from lambdas.training.contracts import TrainingInput
from lambdas.training.rekognition import ProjectInfo, VersionInfo

SETTINGS = ProjectSettings(
    feature="CONTENT_MODERATION", min_new_labeled_entries=20, moderation_confidence_threshold=40
)
NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def manifest(kind: str, entries: int, version: str | None = "v1") -> ManifestInfo:
    return ManifestInfo(
        kind, "data", f"moderation/adapter-manifests/{kind.lower()}.manifest", version, entries
    )


def decide(**overrides: Any) -> trigger.Decision:
    arguments: dict[str, Any] = {
        "train": manifest("TRAIN", 30),
        "test": None,
        "has_datasets": False,
        "last_counts": None,
        "force": False,
        "lock_holder": None,
        **overrides,
    }
    return trigger.decide_adapter("moderation", SETTINGS, **arguments)


def test_an_adapter_trains_from_its_manifest_once_enough_lines_arrived() -> None:
    assert decide().train and decide().new_entries == 30
    later = decide(last_counts=DatasetSnapshot(train_labeled_entries=25, train_total_entries=25))
    assert not later.train and "only 5 new labeled entries" in later.reason
    assert decide(last_counts=DatasetSnapshot(train_labeled_entries=25), force=True).train


def test_an_adapter_without_a_training_manifest_or_with_datasets_is_not_trained() -> None:
    missing = decide(train=None, force=True)
    assert not missing.train and "moderation/train/<label>/" in missing.reason
    assert "moderation/train/safe/" in missing.reason
    with_datasets = decide(has_datasets=True, force=True)
    assert not with_datasets.train and "DeleteDataset" in with_datasets.reason
    busy = decide(lock_holder="moderation-20261130T010000Z-abc123", force=True)
    assert not busy.train and "already in flight" in busy.reason


def test_the_workflow_input_names_the_manifest_versions_and_no_dataset() -> None:
    project = ProjectInfo(
        "moderation",
        "arn:aws:rekognition:us-east-1:1:project/moderation/1",
        "CREATED",
        "CONTENT_MODERATION",
        {},
    )
    payload = trigger.execution_input(
        project=project,
        datasets={},
        settings=SETTINGS,
        version_name="moderation.2026-11-30T02.00.00.abc123",
        lock_token="t",
        request=trigger.TriggerRequest("moderation"),
        reason="r",
        manifests=(manifest("TRAIN", 30, "3Lg"), manifest("TEST", 6, None)),
    )
    parsed = TrainingInput.model_validate(payload)
    assert parsed.train_dataset_arn is None and parsed.test_dataset_arn is None
    assert parsed.adapter is not None
    assert parsed.adapter.train_manifest == {
        "Bucket": "data",
        "Name": "moderation/adapter-manifests/train.manifest",
        "Version": "3Lg",
    }
    # An unversioned object is named without Version
    assert parsed.adapter.test_manifest == {
        "Bucket": "data",
        "Name": "moderation/adapter-manifests/test.manifest",
    }
    assert parsed.snapshot["train_labeled_entries"] == 30 and parsed.snapshot["test_labeled_entries"] == 6
    assert parsed.settings.moderation_confidence_threshold == 40


class Seen:
    def __init__(self) -> None:
        self.names: set[str] = set()

    def mark_version_seen(self, project: str, version_name: str, *, status: str, now: datetime) -> bool:
        if version_name in self.names:
            return False
        self.names.add(version_name)
        return True


class Published:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, event_type: str, project: str, **detail: Any) -> dict[str, Any]:
        self.events.append((event_type, project, detail))
        return {}


def test_versions_the_workflow_did_not_create_are_reported_once() -> None:
    ours = naming.version_name("moderation", NOW)
    versions = [
        VersionInfo(f"arn:x/version/{ours}/1", ours, "TRAINING_COMPLETED", 1.0, f1_score=0.9),
        VersionInfo("arn:x/version/auto-1/2", "auto-1", "TRAINING_IN_PROGRESS", 2.0),
    ]
    seen, published = Seen(), Published()
    first = report_discovered_versions("moderation", versions, store=seen, publisher=published, now=NOW)
    second = report_discovered_versions("moderation", versions, store=seen, publisher=published, now=NOW)
    assert first == ["auto-1"] and second == []
    ((event_type, project, detail),) = published.events
    assert (event_type, project) == (EVENT_VERSION_DISCOVERED, "moderation")
    assert detail["version_arn"] == "arn:x/version/auto-1/2" and detail["status"] == "TRAINING_IN_PROGRESS"


def test_only_names_the_workflow_gives_count_as_its_own() -> None:
    assert naming.is_version_name_of("moderation", naming.version_name("moderation", NOW))
    assert naming.is_version_name_of("my project", naming.version_name("my project", NOW))
    assert not naming.is_version_name_of("moderation", "moderation.v2")
    assert not naming.is_version_name_of("moderation", naming.version_name("other", NOW))
