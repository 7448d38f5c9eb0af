"""Pre-flight checks on the datasets (ListDatasetLabels), before paying for a training.

Rules (Custom Labels Developer Guide): classification needs at least 2 labels, object detection
(labels with bounding boxes) at least 1; every training label needs at least 1 image; at most
250 labels per dataset; the TEST labels must overlap the TRAIN labels (at least 50% of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lambdas.common.constants import FEATURE_CONTENT_MODERATION
from lambdas.common.production import DatasetSnapshot
from lambdas.training.naming import version_description
from lambdas.training.rekognition import DatasetInfo, LabelStats

MAX_LABELS = 250
MIN_TEST_OVERLAP = 0.5


class PreflightError(Exception):
    """The datasets cannot produce a model; the message says what to fix."""


@dataclass(frozen=True)
class PreflightResult:
    problems: list[str]
    task: str  # classification | detection | moderation
    snapshot: DatasetSnapshot
    train_labels: dict[str, int] = field(default_factory=dict)
    test_labels: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def reason(self) -> str:
        return "; ".join(self.problems)

    def description(self) -> str:
        s = self.snapshot
        return version_description(
            f"autopilot {self.task}: TRAIN {s.train_labeled_entries} labeled of {s.train_total_entries},"
            f" TEST {s.test_labeled_entries} labeled of {s.test_total_entries},"
            f" {len(self.train_labels)} labels"
        )

    def to_output(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "description": self.description(),
            "snapshot": self.snapshot.to_dict(),
            "train_labels": self.train_labels,
            "test_labels": self.test_labels,
        }


def _preview(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(n) for n in sorted(names)[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check(
    *,
    project: str,
    feature: str,
    train: DatasetInfo,
    test: DatasetInfo,
    train_labels: list[LabelStats],
    test_labels: list[LabelStats],
) -> PreflightResult:
    problems: list[str] = []
    detection = any(label.bounding_boxes > 0 for label in train_labels)
    if feature == FEATURE_CONTENT_MODERATION:
        task, minimum = "moderation", 1
    elif detection:
        task, minimum = "detection", 1
    else:
        task, minimum = "classification", 2

    if train.labeled_entries == 0:
        problems.append(
            f"the TRAIN dataset has no labeled entries: upload images under {project}/train/<label>/"
        )
    if test.total_entries == 0:
        problems.append(f"the TEST dataset is empty: upload images under {project}/test/<label>/")
    elif test.labeled_entries == 0:
        problems.append(
            f"the TEST dataset has no labeled entries: label images under {project}/test/<label>/"
        )

    train_names = {label.name for label in train_labels if label.entries > 0}
    if len(train_names) < minimum:
        found = _preview(sorted(train_names)) or "none"
        problems.append(
            f"{task} needs at least {minimum} labels with images in TRAIN, "
            f"found {len(train_names)} ({found}): "
            f"add images under {project}/train/<label>/"
        )
    empty = [label.name for label in train_labels if label.entries == 0]
    if empty:
        problems.append(f"TRAIN labels without any image: {_preview(empty)}; add images or remove the labels")
    for name, labels in (("TRAIN", train_labels), ("TEST", test_labels)):
        if len(labels) > MAX_LABELS:
            problems.append(
                f"the {name} dataset has {len(labels)} labels, more than the {MAX_LABELS} allowed"
            )

    test_names = {label.name for label in test_labels if label.entries > 0}
    if test_names and train_names:
        missing = sorted(test_names - train_names)
        overlap = 1 - len(missing) / len(test_names)
        if overlap < MIN_TEST_OVERLAP:
            problems.append(
                f"only {overlap:.0%} of the TEST labels appear in TRAIN "
                f"(at least {MIN_TEST_OVERLAP:.0%} needed); "
                f"TEST-only labels: {_preview(missing)}"
            )

    snapshot = DatasetSnapshot(
        train_labeled_entries=train.labeled_entries,
        test_labeled_entries=test.labeled_entries,
        train_total_entries=train.total_entries,
        test_total_entries=test.total_entries,
        labels=len(train_names),
    )
    return PreflightResult(
        problems=problems,
        task=task,
        snapshot=snapshot,
        train_labels={label.name: label.entries for label in train_labels},
        test_labels={label.name: label.entries for label in test_labels},
    )
