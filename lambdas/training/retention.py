"""Retention: keep the newest `retain_versions` versions, delete older ones that are safe to delete.

Never deleted: the production version, the version just trained, and any version that is running,
starting, stopping, training, copying or being deleted (DeleteProjectVersion refuses those anyway).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lambdas.training.rekognition import VersionInfo

DELETABLE_STATUSES = frozenset(
    {
        "TRAINING_COMPLETED",
        "TRAINING_FAILED",
        "STOPPED",
        "FAILED",
        "COPYING_COMPLETED",
        "COPYING_FAILED",
        "DEPRECATED",
        "EXPIRED",
    }
)


@dataclass(frozen=True)
class RetentionPlan:
    keep: list[VersionInfo]
    delete: list[VersionInfo]


def plan(
    versions: Iterable[VersionInfo], *, retain: int, protected_arns: Iterable[str | None]
) -> RetentionPlan:
    """Newest first; the `retain` newest are kept, older ones deleted unless protected or busy."""
    protected = {arn for arn in protected_arns if arn}
    ordered = sorted(versions, key=lambda v: (v.created_epoch, v.name), reverse=True)
    keep: list[VersionInfo] = []
    delete: list[VersionInfo] = []
    for index, version in enumerate(ordered):
        if index < retain or version.arn in protected or version.status not in DELETABLE_STATUSES:
            keep.append(version)
        else:
            delete.append(version)
    return RetentionPlan(keep=keep, delete=delete)
