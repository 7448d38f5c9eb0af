"""A function's configuration: the application settings from SSM, and its environment variables.

The settings (AppSettings JSON) come from the SSM parameter the stack writes, cached for five
minutes per warm container via Powertools parameters, so a settings change reaches the functions
without a redeploy of their code.

The environment variables of each function are one pydantic model below. The handler validates
its environment with it (`from_environ`), and the stack builds the function's environment from the
same model (`variables`), so the names are written once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Self

from aws_lambda_powertools.utilities import parameters
from pydantic import BaseModel, ConfigDict, Field

from lambdas.common.constants import (
    ENV_BUCKET,
    ENV_DATASET_POLL_SECONDS,
    ENV_DETECTION_QUEUE_URL,
    ENV_DETECTIONS_TOPIC,
    ENV_EVENT_BUS,
    ENV_IDEMPOTENCY_TABLE,
    ENV_INGESTION_FLUSH_DELAY,
    ENV_INGESTION_QUEUE_URL,
    ENV_INGESTION_RETRY_HOURS,
    ENV_LIFECYCLE_TOPIC,
    ENV_MODEL_CONTROL_STATE_MACHINE,
    ENV_SETTINGS_PARAMETER,
    ENV_STATE_TABLE,
    INGESTION_RETRY_HOURS_DEFAULT,
    SQS_MAX_DELAY_SECONDS,
)
from lambdas.common.settings import AppSettings

_MAX_AGE_SECONDS = 300


def load_settings(parameter_name: str | None = None) -> AppSettings:
    name = parameter_name or os.environ.get(ENV_SETTINGS_PARAMETER)
    if not name:
        raise RuntimeError(f"environment variable {ENV_SETTINGS_PARAMETER} is not set")
    raw = parameters.get_parameter(name, max_age=_MAX_AGE_SECONDS)
    return AppSettings.from_json(str(raw))


def clear_cache() -> None:
    parameters.clear_caches()


class FunctionEnvironment(BaseModel):
    """The environment variables of one function: field aliases are the variable names."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        return cls.model_validate(dict(os.environ if environ is None else environ))

    @classmethod
    def variable(cls, field: str) -> str:
        """The name of the environment variable behind `field`."""
        return cls.model_fields[field].alias or field

    @classmethod
    def variables(cls, **values: Any) -> dict[str, str]:
        """The environment for a function, by field name. Values may be CDK tokens, which only
        resolve at deploy time; the handler validates the resolved values with `from_environ`."""
        fields = cls.model_fields
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {', '.join(unknown)}; known: {', '.join(fields)}")
        missing = sorted(name for name, info in fields.items() if info.is_required() and name not in values)
        if missing:
            raise TypeError(f"{cls.__name__} needs a value for {', '.join(missing)}")
        return {fields[name].alias or name: str(value) for name, value in values.items() if value is not None}


class IngestionEnvironment(FunctionEnvironment):
    bucket: str = Field(alias=ENV_BUCKET, min_length=3)
    lifecycle_topic_arn: str = Field(alias=ENV_LIFECYCLE_TOPIC, pattern=r"^arn:")
    state_table: str = Field(alias=ENV_STATE_TABLE, min_length=3)
    idempotency_table: str = Field(alias=ENV_IDEMPOTENCY_TABLE, min_length=3)
    settings_parameter: str = Field(alias=ENV_SETTINGS_PARAMETER, min_length=1)
    queue_url: str = Field(alias=ENV_INGESTION_QUEUE_URL, pattern=r"^https?://")
    flush_delay_seconds: int = Field(
        default=20, alias=ENV_INGESTION_FLUSH_DELAY, ge=0, le=SQS_MAX_DELAY_SECONDS
    )
    dataset_poll_seconds: float = Field(default=5.0, alias=ENV_DATASET_POLL_SECONDS, gt=0, le=300)
    retry_hours: float = Field(
        default=INGESTION_RETRY_HOURS_DEFAULT, alias=ENV_INGESTION_RETRY_HOURS, gt=0, le=24 * 14
    )


class DetectionEnvironment(FunctionEnvironment):
    detections_topic: str = Field(alias=ENV_DETECTIONS_TOPIC, min_length=1)
    state_table: str = Field(alias=ENV_STATE_TABLE, min_length=1)
    idempotency_table: str = Field(alias=ENV_IDEMPOTENCY_TABLE, min_length=1)
    queue_url: str = Field(alias=ENV_DETECTION_QUEUE_URL, min_length=1)
    event_bus: str = Field(default="default", alias=ENV_EVENT_BUS)
    settings_parameter: str | None = Field(default=None, alias=ENV_SETTINGS_PARAMETER)


class GuardEnvironment(FunctionEnvironment):
    state_table: str = Field(alias=ENV_STATE_TABLE, min_length=1)
    lifecycle_topic: str = Field(alias=ENV_LIFECYCLE_TOPIC, min_length=1)
    detection_queue_url: str | None = Field(default=None, alias=ENV_DETECTION_QUEUE_URL)
    settings_parameter: str | None = Field(default=None, alias=ENV_SETTINGS_PARAMETER)


class ControllerEnvironment(GuardEnvironment):
    state_machine_arn: str = Field(alias=ENV_MODEL_CONTROL_STATE_MACHINE, min_length=1)
