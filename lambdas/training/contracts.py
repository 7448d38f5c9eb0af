"""The training workflow's data contract: its execution input, its settings, what each Lambda
step receives and returns, and the state the definition reads (infra/workflows/training.py).

The trigger dumps `TrainingInput`; each step returns its result model dumped; the definition
takes every JSONPath from these models with `lambdas.common.contracts.field_path`, so a renamed
field fails the synth instead of an execution.

Service results the state machine keeps (DescribeDataset, DescribeProjectVersions, Create- and
StartProjectVersion) carry Rekognition's own field names.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from lambdas.common import contracts
from lambdas.common.contracts import Contract, PollCount, StepError, field_path


# --- execution input (lambdas.training.trigger.execution_input) -----------------------------------
class WorkflowSettings(Contract):
    """The per-project values the state machine reads from its input."""

    feature: str
    poll_seconds: int
    max_polls: int
    max_split_polls: int
    model_poll_seconds: int
    max_model_polls: int
    f1_floor: float
    promotion_margin: float
    label_f1_floors: dict[str, float] = Field(default_factory=dict)
    max_label_f1_drop: float | None = None
    retain_versions: int
    min_inference_units: int
    max_inference_units: int
    moderation_confidence_threshold: float | None = None


class TriggerInfo(Contract):
    source: str
    force: bool
    reason: str


class AdapterInput(Contract):
    """CONTENT_MODERATION projects: the manifests (S3Object of the version read at trigger time) an
    adapter trains from; no test manifest means TestingData.AutoCreate."""

    train_manifest: dict[str, str]
    test_manifest: dict[str, str] | None = None
    description: str


class TrainingInput(Contract):
    project: str
    project_arn: str
    train_dataset_arn: str | None = None  # datasets: CUSTOM_LABELS projects
    test_dataset_arn: str | None = None
    adapter: AdapterInput | None = None  # manifests: CONTENT_MODERATION projects
    version_name: str
    lock_token: str
    output_prefix: str
    trigger: TriggerInfo
    snapshot: dict[str, int]
    settings: WorkflowSettings


# --- service results kept in the state ------------------------------------------------------------
class ExecutionRef(Contract):
    arn: str
    name: str


class CreatedVersion(Contract):
    ProjectVersionArn: str


class ListedVersions(contracts.ListedVersions):
    """DescribeProjectVersions of one name: the list, its length, then the picked element."""

    version: dict[str, Any] | None = None
    Status: str | None = None  # StartProjectVersion's answer, kept at the same place


class DatasetStatus(Contract):
    Status: str


class SplitStatus(Contract):
    train: DatasetStatus | None = None
    test: DatasetStatus | None = None


class TestDatasetStats(Contract):
    stats: dict[str, Any] = Field(default_factory=dict)


# --- Lambda steps: requests and results -------------------------------------------------------------
class PreflightRequest(Contract):
    project: str
    train_dataset_arn: str
    test_dataset_arn: str
    feature: str | None = None


class PreflightOutput(Contract):
    task: str
    description: str
    snapshot: dict[str, int]
    train_labels: dict[str, int] = Field(default_factory=dict)
    test_labels: dict[str, int] = Field(default_factory=dict)


class GateRequest(Contract):
    project: str
    project_arn: str
    version: dict[str, Any]
    settings: WorkflowSettings


class ProductionSummary(Contract):
    version_arn: str
    version_name: str
    f1_score: float
    status: str


class GateResult(Contract):
    decision: str
    reason: str
    f1_score: float | None
    version_arn: str
    production: ProductionSummary | None
    old_running: bool
    label_failures: list[str] = Field(default_factory=list)
    same_test_set: bool | None = None


class PromoteRequest(Contract):
    project: str
    version_arn: str
    version_name: str
    f1_score: float
    production: ProductionSummary | None = None
    snapshot: dict[str, int] | None = None
    execution_arn: str | None = None
    reason: str | None = None


class PromoteResult(Contract):
    version_arn: str
    promoted_at: str


class RetentionRequest(Contract):
    project: str
    project_arn: str
    retain_versions: int
    protect: list[str] = Field(default_factory=list)


class RetentionResult(Contract):
    deleted: list[str]
    kept: list[str]


class FinishRequest(Contract):
    project: str
    lock_token: str
    outcome: str
    reason: str | None = None


class FinishResult(Contract):
    released: bool
    outcome: str


class FailureReport(Contract):
    """describe_failure's result: what went wrong, in words a person can act on."""

    error: str
    reason: str
    status_message: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"error": self.error, "reason": self.reason, "status_message": self.status_message}


class FailureResult(Contract):
    error: str
    reason: str
    status_message: str = ""
    released: bool


class FailureRequest(Contract):
    """The failure step receives the whole state at the failure."""

    state: dict[str, Any]


class TrainingSummary(Contract):
    """The execution's output: the outcome, not every intermediate response."""

    project: str
    outcome: str
    version_name: str
    version_arn: str
    gate: GateResult


# --- the state the definition reads ----------------------------------------------------------------
class TrainingState(TrainingInput):
    execution: ExecutionRef | None = None
    test_dataset: TestDatasetStats | None = None
    split: SplitStatus | None = None
    polls: PollCount | None = None
    preflight: PreflightOutput | None = None
    created: CreatedVersion | None = None
    training: ListedVersions | None = None
    gate: GateResult | None = None
    bluegreen: ListedVersions | None = None
    promotion: PromoteResult | None = None
    retention: RetentionResult | None = None
    finish: FinishResult | None = None
    failure: FailureResult | None = None
    error: StepError | None = None
    stop_error: StepError | None = None
    retention_error: StepError | None = None
    finish_error: StepError | None = None
    report_error: StepError | None = None


def state_path(*names: str) -> str:
    """A JSONPath into the training state, checked against `TrainingState`."""
    return field_path(TrainingState, *names)
