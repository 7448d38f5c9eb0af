"""The environment of the training functions and the dependencies built from it."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from lambdas.common.constants import (
    ENV_BUCKET,
    ENV_LIFECYCLE_TOPIC,
    ENV_SETTINGS_PARAMETER,
    ENV_STATE_TABLE,
    ENV_TRAINING_STATE_MACHINE,
)
from lambdas.common.events import LifecyclePublisher
from lambdas.training.state import TrainingStateStore


class TrainingEnvironment(BaseModel):
    """Environment of every training function; a missing or malformed variable is named at once."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    state_table: str = Field(alias=ENV_STATE_TABLE, min_length=3)
    lifecycle_topic_arn: str = Field(alias=ENV_LIFECYCLE_TOPIC, pattern=r"^arn:")

    @classmethod
    def from_environ(cls) -> Self:
        return cls.model_validate(dict(os.environ))

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


def now() -> datetime:
    return datetime.now(UTC)
