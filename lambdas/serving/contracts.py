"""The model control workflow's data contract: its execution input (built by
lambdas.serving.control.transition_input) and the state its definition reads
(infra/workflows/model_control.py takes every JSONPath from these models)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from lambdas.common.contracts import Contract, ListedVersions, PollCount, StepError, field_path


class ModelControlInput(Contract):
    project: str
    action: str  # START | STOP
    project_arn: str
    version_arn: str
    version_name: str
    min_inference_units: int
    max_inference_units: int | None = None  # always present; null without auto-scaling
    poll_seconds: int
    max_polls: int
    polls: int = 0
    attempt: int
    ledger_expires_at: int  # expiry (epoch seconds) of the usage-ledger items the transition writes
    reason: str


class DescribedVersion(Contract):
    version: dict[str, Any] = Field(default_factory=dict)


class LedgerStamp(Contract):
    at: str


class ModelControlState(ModelControlInput):
    poll: PollCount | None = None
    describe: DescribedVersion | None = None
    described: ListedVersions | None = None
    error: StepError | None = None
    ledger: LedgerStamp | None = None
    ledger_error: StepError | None = None
    event: dict[str, Any] | None = None


def control_path(*names: str) -> str:
    """A JSONPath into the model control state, checked against `ModelControlState`."""
    return field_path(ModelControlState, *names)
