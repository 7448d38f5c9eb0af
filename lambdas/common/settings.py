"""Application settings: one pydantic model, read from cdk.json context by the stack and from an
SSM parameter (the same JSON, resolved per project) by the handlers and the local runtime.

cdk.json context shape::

    "projects": {
        "defaults": { ...ProjectSettings fields... },
        "<project name>": { ...overrides of the defaults... }
    },
    "notification_email": "ops@example.com" | null,
    "controller_rate_minutes": 1,
    "guard": { ...GuardSettings fields... }

Every project that may appear as the first folder of an S3 key must be listed: the stack
scopes notifications and IAM to the listed names.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PROJECT_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")
DEFAULTS_KEY = "defaults"
# HumanLoopConfig.FlowDefinitionArn: at most 256 characters (Rekognition's model, which sets no
# pattern); the ARN form is the one SageMaker's model gives flow definitions, with the name pattern of
# CreateFlowDefinition.
FLOW_DEFINITION_ARN_MAX = 256
FLOW_DEFINITION_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:[0-9]{12}:flow-definition/[a-z0-9](-*[a-z0-9]){0,62}$"
)


class ServingWindow(BaseModel):
    """A period during which the model is kept running even without work.

    `cron` uses the six-field EventBridge form without the ``cron(...)`` wrapper, evaluated in
    UTC: minutes hours day-of-month month day-of-week year, e.g. "0 8 ? * MON-FRI *".
    The window opens at each match and lasts `minutes`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str
    minutes: int = Field(gt=0, le=24 * 60 * 7)


class ProjectSettings(BaseModel):
    """Per-project behaviour. Every field has a default; cdk.json overrides any of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature: Literal["CUSTOM_LABELS", "CONTENT_MODERATION"] = "CUSTOM_LABELS"

    # --- training (issue: hands-off training) ---
    training_schedule: str = Field(
        default="cron(0 3 * * ? *)", description="EventBridge Scheduler expression for training checks"
    )
    min_new_labeled_entries: int = Field(default=50, ge=0)
    f1_floor: float = Field(default=0.8, ge=0, le=1)
    promotion_margin: float = Field(default=0.0, ge=0, le=1)
    retain_versions: int = Field(default=3, ge=1, le=50)
    training_poll_seconds: int = Field(default=300, ge=1, le=3600)
    training_timeout_hours: int = Field(default=24, ge=1, le=72)
    moderation_confidence_threshold: float | None = Field(default=None, ge=0, le=100)
    # Per-label gate: each listed label's F1 on the new version's TEST set must reach its floor,
    # and no label's F1 may fall more than `max_label_f1_drop` below production's (None: no limit).
    label_f1_floors: dict[str, float] = Field(default_factory=dict)
    max_label_f1_drop: float | None = Field(default=None, ge=0, le=1)

    # --- serving (issue: model serving control) ---
    min_inference_units: int = Field(default=1, ge=1)
    max_inference_units: int | None = Field(default=None, ge=1)
    idle_minutes: int = Field(default=15, ge=1)
    serving_windows: tuple[ServingWindow, ...] = ()
    start_retry_limit: int = Field(default=2, ge=0, le=10)
    model_poll_seconds: int = Field(default=60, ge=1, le=900)
    max_iu_hours_per_day: float | None = Field(
        default=None,
        gt=0,
        description="inference-unit hours a day (UTC) after which the account guard stops the project's "
        "models, serving windows notwithstanding; None: no budget",
    )

    # --- ingestion ---
    task_type: Literal["IMAGE_LEVEL_LABELS", "OBJECT_LOCALIZATION"] | None = Field(
        default=None, description="None: fixed by the project's first ingested entries"
    )

    # --- custom moderation adapters (feature CONTENT_MODERATION) ---
    moderation_safe_folder: str = Field(
        default="safe",
        min_length=1,
        max_length=256,
        description="folder under train/ and test/ for images without unsafe content (an empty label list)",
    )
    auto_update: bool = Field(
        default=True,
        description="CreateProject AutoUpdate for CONTENT_MODERATION projects: the service retrains the "
        "adapter on new base model versions (needs the bucket policy of the stack)",
    )

    # --- detection ---
    min_confidence: float | None = Field(
        default=None, ge=0, le=100, description="None: each label's assumed threshold applies"
    )
    max_results: int = Field(default=10, ge=1, le=1000)
    review_confidence: float | None = Field(
        default=60.0, ge=0, le=100, description="results whose top confidence is below go to review/"
    )

    @field_validator("label_f1_floors")
    @classmethod
    def _floors_valid(cls, floors: dict[str, float]) -> dict[str, float]:
        for label, floor in floors.items():
            if not label or len(label) > 256:
                raise ValueError(f"label_f1_floors: label name {label!r} must be 1-256 characters")
            if not 0 <= floor <= 1:
                raise ValueError(f"label_f1_floors[{label!r}] = {floor} must be an F1 score between 0 and 1")
        return floors

    @model_validator(mode="after")
    def _units_consistent(self) -> ProjectSettings:
        if self.max_inference_units is not None and self.max_inference_units < self.min_inference_units:
            raise ValueError("max_inference_units must be >= min_inference_units")
        return self

    # --- human review with Amazon A2I (CONTENT_MODERATION projects) ---
    # DetectModerationLabels passes HumanLoopConfig with this flow definition when it is set; the
    # classifiers go to HumanLoopConfig.DataAttributes.ContentClassifiers.
    human_loop_flow_definition_arn: str | None = Field(
        default=None,
        description="ARN of the SageMaker flow definition (human review workflow) that reviews this "
        "project's moderation results; None: no human review",
    )
    human_loop_content_classifiers: tuple[
        Literal["FreeOfPersonallyIdentifiableInformation", "FreeOfAdultContent"], ...
    ] = Field(default=(), description="HumanLoopDataAttributes.ContentClassifiers")

    @field_validator("human_loop_flow_definition_arn")
    @classmethod
    def _flow_definition_arn_valid(cls, arn: str | None) -> str | None:
        if arn is not None and (
            len(arn) > FLOW_DEFINITION_ARN_MAX or not FLOW_DEFINITION_ARN_PATTERN.match(arn)
        ):
            raise ValueError(
                f"human_loop_flow_definition_arn {arn!r} is not a flow definition ARN: expected "
                "arn:aws:sagemaker:<region>:<12-digit account>:flow-definition/<name> (name: lowercase "
                f"letters, digits and '-', at most 63), at most {FLOW_DEFINITION_ARN_MAX} characters"
            )
        return arn

    @model_validator(mode="after")
    def _human_loop_consistent(self) -> ProjectSettings:
        if self.human_loop_flow_definition_arn is not None and self.feature != "CONTENT_MODERATION":
            raise ValueError(
                "human_loop_flow_definition_arn applies to CONTENT_MODERATION projects only "
                "(DetectCustomLabels has no human loop); remove it or set feature to CONTENT_MODERATION"
            )
        if self.human_loop_content_classifiers and self.human_loop_flow_definition_arn is None:
            raise ValueError(
                "human_loop_content_classifiers needs human_loop_flow_definition_arn: set the flow "
                "definition or remove the classifiers"
            )
        return self


class GuardSettings(BaseModel):
    """The account guard: a sweep of every Rekognition project of the account and region."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_minutes: int = Field(default=15, ge=1, le=24 * 60, description="sweep interval")
    stop_unmanaged_after_minutes: int | None = Field(
        default=None,
        ge=0,
        description="stop a model the controller does not manage once it has been seen running this "
        "long; None: report only",
    )
    stop_allowed_projects: tuple[str, ...] = Field(
        default=(),
        description="projects whose unmanaged models the guard may stop (IAM allows no other)",
    )

    @field_validator("stop_allowed_projects")
    @classmethod
    def _allowed_names_valid(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if not PROJECT_NAME_PATTERN.match(name):
                raise ValueError(
                    f"guard.stop_allowed_projects: {name!r} must be 1-255 characters of letters, digits, "
                    "'_', '.', '-'"
                )
        return names


class AppSettings(BaseModel):
    """Everything the application is configured with, projects already merged with defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    projects: dict[str, ProjectSettings]
    notification_email: str | None = None
    controller_rate_minutes: int = Field(default=1, ge=1, le=60)
    guard: GuardSettings = Field(default_factory=GuardSettings)

    @field_validator("projects")
    @classmethod
    def _names_valid(cls, projects: dict[str, ProjectSettings]) -> dict[str, ProjectSettings]:
        if not projects:
            raise ValueError("configure at least one project under context 'projects'")
        for name in projects:
            if not PROJECT_NAME_PATTERN.match(name):
                raise ValueError(
                    f"project name {name!r} must be 1-255 characters of letters, digits, '_', '.', '-'"
                )
        return projects

    def project(self, name: str) -> ProjectSettings:
        try:
            return self.projects[name]
        except KeyError:
            known = ", ".join(sorted(self.projects))
            raise UnknownProjectError(
                f"project {name!r} is not configured (known: {known}); add it under context 'projects' "
                "in cdk.json and deploy"
            ) from None

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, raw: str) -> AppSettings:
        return cls.model_validate_json(raw)


class UnknownProjectError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def settings_from_context(context: dict[str, Any]) -> AppSettings:
    """Merges `projects.defaults` into every project entry and validates the result."""
    raw_projects = dict(context.get("projects") or {})
    defaults = raw_projects.pop(DEFAULTS_KEY, {}) or {}
    merged = {name: {**defaults, **(overrides or {})} for name, overrides in raw_projects.items()}
    return AppSettings.model_validate(
        {
            "projects": merged,
            "notification_email": context.get("notification_email"),
            "controller_rate_minutes": context.get("controller_rate_minutes", 1),
            "guard": context.get("guard") or {},
        }
    )


def load_cdk_context(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return dict(json.load(handle).get("context", {}))
