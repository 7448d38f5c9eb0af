"""Reads the application settings (AppSettings JSON) from the SSM parameter the stack writes.

Cached for five minutes per warm container via Powertools parameters, so a settings change
reaches the functions without a redeploy of their code.
"""

from __future__ import annotations

import os

from aws_lambda_powertools.utilities import parameters

from lambdas.common.constants import ENV_SETTINGS_PARAMETER
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
