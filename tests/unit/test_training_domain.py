"""Training domain logic without AWS: naming, trigger decision, preflight, gate, retention, failures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lambdas.common.production import DatasetSnapshot, ProductionRecord
from lambdas.common.settings import AppSettings, ProjectSettings
from lambdas.training import gate, naming, preflight, promotion, retention, trigger
from lambdas.training.rekognition import (
    DatasetInfo,
    LabelStats,
    VersionInfo,
    version_info,
    version_name_from_arn,
)

NOW = datetime(2026, 11, 21, 18, 0, 0, tzinfo=UTC)
PROJECT_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/digits/1700000000000"


def _dataset(
    kind: str, labeled: int, total: int | None = None, status: str = "UPDATE_COMPLETE"
) -> DatasetInfo:
    return DatasetInfo(
        dataset_type=kind,
        arn=f"{PROJECT_ARN.rsplit('/', 1)[0]}/dataset/{kind.lower()}/1",
        status=status,
        labeled_entries=labeled,
        total_entries=labeled if total is None else total,
        total_labels=3,
    )


def _production(f1: float, name: str = "digits.v1") -> ProductionRecord:
    return ProductionRecord(
        project="digits",
        version_arn=f"arn:aws:rekognition:us-east-1:123456789012:project/digits/version/{name}/1",
        version_name=name,
        f1_score=f1,
        promoted_at=NOW.isoformat(),
    )


# --- naming -----------------------------------------------------------------------------------
def test_version_and_execution_names_are_valid_and_unique() -> None:
    # Given a project name with characters that execution names refuse
    project = "my.project"
    # When names are made twice in the same second
    versions = {naming.version_name(project, NOW) for _ in range(20)}
    executions = {naming.execution_name(project, NOW) for _ in range(20)}
    # Then they never collide and respect the service patterns and lengths
    assert len(versions) == 20 and len(executions) == 20
    assert all(v.startswith("my.project.2026-11-21T18.00.00.") for v in versions)
    assert all(e.startswith("my-project-20261121T180000Z-") and len(e) <= 80 for e in executions)


def test_long_project_names_are_truncated_to_the_limits() -> None:
    project = "p" * 255
    assert len(naming.version_name(project, NOW)) == 255
    assert len(naming.execution_name(project, NOW)) == 80


def test_version_description_keeps_only_allowed_characters() -> None:
    text = naming.version_description("TRAIN 5/7 labeled = ok; <b>" + "x" * 400)
    assert "/" not in text and "=" not in text and "<" not in text
    assert len(text) == 255


def test_polling_bounds_follow_the_settings() -> None:
    # Given a 2 hour timeout polled every 60 s
    project = ProjectSettings(training_timeout_hours=2, training_poll_seconds=60, model_poll_seconds=30)
    # Then the loop allows 120 checks, and the model start 120 checks of 30 s
    assert naming.training_polls(project) == 120
    assert naming.model_start_polls(project) == 120
    settings = AppSettings(projects={"a": project, "b": ProjectSettings(training_timeout_hours=5)})
    assert naming.execution_timeout_seconds(settings) == 5 * 3600 + 3 * 3600
    assert naming.lock_ttl_seconds(settings) > naming.execution_timeout_seconds(settings)


# --- trigger decision ---------------------------------------------------------------------------
def _decide(**overrides: object) -> trigger.Decision:
    arguments: dict[str, object] = {
        "datasets": {"TRAIN": _dataset("TRAIN", 80), "TEST": _dataset("TEST", 20)},
        "last_counts": DatasetSnapshot(train_labeled_entries=40, test_labeled_entries=10),
        "force": False,
        "lock_holder": None,
    }
    arguments.update(overrides)
    return trigger.decide("digits", ProjectSettings(min_new_labeled_entries=50), **arguments)  # type: ignore[arg-type]


def test_trains_when_enough_new_labeled_entries() -> None:
    decision = _decide()
    assert decision.train and decision.new_entries == 50


def test_skips_below_the_threshold_and_says_how_to_force() -> None:
    decision = _decide(last_counts=DatasetSnapshot(train_labeled_entries=60, test_labeled_entries=15))
    assert not decision.train and decision.new_entries == 25
    assert "threshold 50" in decision.reason and "forced" in decision.reason


def test_force_trains_below_the_threshold() -> None:
    decision = _decide(
        last_counts=DatasetSnapshot(train_labeled_entries=80, test_labeled_entries=20), force=True
    )
    assert decision.train and decision.new_entries == 0


def test_first_training_counts_every_labeled_entry() -> None:
    assert _decide(last_counts=None).new_entries == 100


def test_a_recreated_smaller_dataset_counts_in_full() -> None:
    assert trigger.new_labeled_entries(DatasetSnapshot(train_labeled_entries=10), DatasetSnapshot(500)) == 10


@pytest.mark.parametrize("status", ["UPDATE_IN_PROGRESS", "CREATE_IN_PROGRESS"])
def test_never_trains_while_a_dataset_is_being_updated_even_forced(status: str) -> None:
    decision = _decide(
        datasets={"TRAIN": _dataset("TRAIN", 80, status=status), "TEST": _dataset("TEST", 20)}, force=True
    )
    assert not decision.train and status in decision.reason


def test_never_trains_while_another_training_holds_the_lock() -> None:
    decision = _decide(lock_holder="digits-20261121T170000Z-abc123", force=True)
    assert not decision.train and "in flight" in decision.reason


def test_missing_datasets_give_actionable_reasons() -> None:
    assert "digits/train/<label>/" in _decide(datasets={}).reason
    assert "digits/test/<label>/" in _decide(datasets={"TRAIN": _dataset("TRAIN", 80)}).reason


def test_workflow_settings_carry_bounds_and_unit_ceiling() -> None:
    settings = trigger.workflow_settings(
        ProjectSettings(training_poll_seconds=1, min_inference_units=2, training_timeout_hours=1)
    )
    assert settings["poll_seconds"] == 1 and settings["max_polls"] == 3600
    assert settings["max_inference_units"] == 2  # no auto-scaling: ceiling = floor
    assert settings["moderation_confidence_threshold"] is None


# --- preflight ----------------------------------------------------------------------------------
def _labels(**counts: int) -> list[LabelStats]:
    return [LabelStats(name, entries, 0) for name, entries in counts.items()]


def _check(train_labels: list[LabelStats], test_labels: list[LabelStats], feature: str = "CUSTOM_LABELS"):
    return preflight.check(
        project="digits",
        feature=feature,
        train=_dataset("TRAIN", 30),
        test=_dataset("TEST", 6),
        train_labels=train_labels,
        test_labels=test_labels,
    )


def test_preflight_passes_with_overlapping_labels_and_describes_the_data() -> None:
    result = _check(_labels(zero=10, one=10, two=10), _labels(zero=2, one=2, two=2))
    assert result.ok and result.task == "classification"
    assert (
        result.description()
        == "autopilot classification: TRAIN 30 labeled of 30, TEST 6 labeled of 6, 3 labels"
    )
    assert result.to_output()["snapshot"]["labels"] == 3


def test_classification_needs_two_labels() -> None:
    result = _check(_labels(zero=10), _labels(zero=2))
    assert not result.ok and "at least 2 labels" in result.reason and "digits/train/<label>/" in result.reason


def test_detection_needs_one_label() -> None:
    result = _check([LabelStats("box", 10, 12)], [LabelStats("box", 2, 2)])
    assert result.ok and result.task == "detection"


def test_test_labels_must_overlap_training_labels() -> None:
    result = _check(_labels(zero=10, one=10), _labels(seven=2, eight=2, zero=1))
    assert not result.ok and "33% of the TEST labels" in result.reason and "'eight'" in result.reason


def test_labels_without_images_and_empty_datasets_are_reported() -> None:
    result = preflight.check(
        project="digits",
        feature="CUSTOM_LABELS",
        train=_dataset("TRAIN", 0, total=4),
        test=_dataset("TEST", 0, total=0),
        train_labels=_labels(zero=0, one=0),
        test_labels=[],
    )
    assert "no labeled entries" in result.reason
    assert "TEST dataset is empty" in result.reason
    assert "without any image" in result.reason


# --- gate ---------------------------------------------------------------------------------------
def test_gate_promotes_the_first_version_above_the_floor() -> None:
    decision = gate.evaluate(0.85, production=None, f1_floor=0.8, margin=0.01)
    assert decision.promote and "no version in production" in decision.reason


def test_gate_rejects_below_the_floor() -> None:
    decision = gate.evaluate(0.79, production=None, f1_floor=0.8, margin=0.0)
    assert not decision.promote and "below the floor" in decision.reason


def test_gate_rejects_without_an_f1_score() -> None:
    assert not gate.evaluate(None, production=None, f1_floor=0.0, margin=0.0).promote


@pytest.mark.parametrize(
    ("new", "current", "margin", "promote"),
    [
        (0.83, 0.82, 0.01, True),  # exactly the margin despite float rounding
        (0.825, 0.82, 0.01, False),  # better, but not by the margin
        (0.90, 0.90, 0.0, False),  # equal is not better
        (0.91, 0.90, 0.0, True),
        (1.0, 1.0, 0.01, False),
    ],
)
def test_gate_compares_with_production_by_the_margin(
    new: float, current: float, margin: float, promote: bool
) -> None:
    decision = gate.evaluate(new, production=_production(current), f1_floor=0.5, margin=margin)
    assert decision.promote is promote
    assert decision.production_f1 == current


# --- retention ----------------------------------------------------------------------------------
def _version(name: str, created: float, status: str = "TRAINING_COMPLETED") -> VersionInfo:
    return VersionInfo(arn=f"arn:v/{name}", name=name, status=status, created_epoch=created)


def test_retention_keeps_the_newest_and_never_production_running_or_training() -> None:
    versions = [
        _version("v6", 6, "TRAINING_IN_PROGRESS"),
        _version("v5", 5),
        _version("v4", 4, "RUNNING"),
        _version("v3", 3),  # production
        _version("v2", 2, "TRAINING_FAILED"),
        _version("v1", 1, "STOPPED"),
        _version("v0", 0, "STARTING"),
    ]
    plan = retention.plan(versions, retain=2, protected_arns=["arn:v/v3", None])
    assert [v.name for v in plan.delete] == ["v2", "v1"]
    assert [v.name for v in plan.keep] == ["v6", "v5", "v4", "v3", "v0"]


def test_retention_protects_the_version_just_trained_even_beyond_the_count() -> None:
    plan = retention.plan([_version("new", 1), _version("newer", 2)], retain=1, protected_arns=["arn:v/new"])
    assert plan.delete == []


# --- version descriptions and failures ------------------------------------------------------------
def test_version_info_reads_f1_and_iso_timestamps() -> None:
    raw = {
        "ProjectVersionArn": "arn:aws:rekognition:us-east-1:1:project/digits/version/digits.v2/1700000000000",
        "CreationTimestamp": "2026-11-21T18:00:00+00:00",
        "Status": "TRAINING_COMPLETED",
        "EvaluationResult": {"F1Score": 0.91},
    }
    info = version_info(raw)
    assert info.name == "digits.v2" and info.f1_score == pytest.approx(0.91)
    assert info.created_epoch == NOW.timestamp()
    with pytest.raises(ValueError, match="not a project version ARN"):
        version_name_from_arn(PROJECT_ARN)


def test_failure_report_uses_the_service_status_message() -> None:
    state = {
        "error": {"Error": "TRAINING_FAILED", "Cause": "TRAINING_FAILED"},
        "training": {
            "version": {"Status": "TRAINING_FAILED", "StatusMessage": "The manifest has no labels."}
        },
    }
    report = promotion.describe_failure(state)
    assert report.reason == "training failed: The manifest has no labels."
    assert report.status_message == "The manifest has no labels."


def test_failure_report_unwraps_lambda_errors_and_keeps_api_errors() -> None:
    lambda_error = {
        "Error": "PreflightError",
        "Cause": '{"errorMessage": "preflight checks failed: x", "errorType": "PreflightError"}',
    }
    assert promotion.describe_failure({"error": lambda_error}).reason == "preflight checks failed: x"
    api_error = {
        "Error": "Rekognition.ResourceInUseException",
        "Cause": "The TRAIN dataset is busy (Service: ...)",
    }
    report = promotion.describe_failure({"error": api_error})
    assert report.error == "Rekognition.ResourceInUseException" and report.reason.startswith(
        "The TRAIN dataset"
    )


def test_failure_report_names_timeouts_with_their_bounds() -> None:
    state = {
        "error": {"Error": "TRAINING_TIMEOUT"},
        "settings": {"max_polls": 3, "poll_seconds": 60},
        "training": {"version": {"Status": "TRAINING_IN_PROGRESS"}},
    }
    assert "3 status checks 60 s apart" in promotion.describe_failure(state).reason
    started = {"error": {"Error": "START_FAILED"}, "bluegreen": {"version": {"StatusMessage": "no capacity"}}}
    assert promotion.describe_failure(started).reason == "the new version failed to start: no capacity"


def test_production_record_round_trips_through_dynamodb_attribute_values() -> None:
    record = promotion.build_record(
        project="digits",
        version_arn="arn:v/2",
        version_name="v2",
        f1_score=0.93,
        snapshot={"train_labeled_entries": 80, "test_labeled_entries": 20, "labels": 3},
        previous_version_arn="arn:v/1",
        execution_arn="arn:e/1",
        now=NOW,
    )
    again = ProductionRecord.from_attribute_values(record.to_attribute_values())
    assert again == record
    assert again.dataset_snapshot.labeled_entries == 100
    assert record.to_item()["pk"] == "PROJECT#digits" and record.to_item()["sk"] == "PRODUCTION"
