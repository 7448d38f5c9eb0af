"""The environment of the training functions and the dependencies built from it.

Like the other functions' environments (lambdas/common/config.py), each is a model the handler
validates its environment with (`from_environ`) and the stack builds it from (`variables`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from lambdas.common import clock
from lambdas.common.config import FunctionEnvironment
from lambdas.common.constants import (
    ENV_BUCKET,
    ENV_LIFECYCLE_TOPIC,
    ENV_SETTINGS_PARAMETER,
    ENV_STATE_TABLE,
    ENV_TRAINING_STATE_MACHINE,
)
from lambdas.common.events import LifecyclePublisher
from lambdas.training.state import TrainingStateStore


class PreflightEnvironment(FunctionEnvironment):
    """The preflight step reads no variable: it only asks Rekognition about the datasets."""


class TrainingEnvironment(FunctionEnvironment):
    """Environment of the training steps; a missing or malformed variable is named at once."""

    state_table: str = Field(alias=ENV_STATE_TABLE, min_length=3)
    lifecycle_topic_arn: str = Field(alias=ENV_LIFECYCLE_TOPIC, pattern=r"^arn:")

    def publisher(self) -> LifecyclePublisher:
        return LifecyclePublisher(self.lifecycle_topic_arn)

    def store(self) -> TrainingStateStore:
        return TrainingStateStore(self.state_table)


class TriggerEnvironment(TrainingEnvironment):
    """The trigger also reads the settings and starts the state machine."""

    settings_parameter: str = Field(alias=ENV_SETTINGS_PARAMETER, min_length=1)
    state_machine_arn: str = Field(alias=ENV_TRAINING_STATE_MACHINE, pattern=r"^arn:")
    # The data bucket: the adapter manifests of CONTENT_MODERATION projects (HeadObject).
    bucket: str = Field(alias=ENV_BUCKET, min_length=3)


def run_recorded(use_case: Callable[..., Any], subject: Any, **dependencies: Any) -> dict[str, Any]:
    """Calls a step's use case with the training store and lifecycle publisher of the function's
    environment (and `dependencies`), and returns its result as the workflow reads it."""
    env = TrainingEnvironment.from_environ()
    result = use_case(subject, store=env.store(), publisher=env.publisher(), **dependencies)
    return result.model_dump() if isinstance(result, BaseModel) else dict(result)


def now() -> datetime:
    return clock.utcnow()
