"""Names and bounds derived from a project's settings: version names, execution names, polling limits.

VersionName: 1-255 characters of [a-zA-Z0-9_.-], unique within the project. Execution names:
1-80 characters of [a-zA-Z0-9_-], unique per state machine for 90 days. Both embed a UTC
timestamp and a random suffix so that two triggers in the same second never collide.
"""

from __future__ import annotations

import math
import re
import secrets
from datetime import UTC, datetime

from lambdas.common import clock
from lambdas.common.settings import AppSettings, ProjectSettings

VERSION_NAME_MAX = 255
EXECUTION_NAME_MAX = 80
VERSION_DESCRIPTION_MAX = 255
_VERSION_UNSAFE = re.compile(r"[^a-zA-Z0-9_.\-]")
_EXECUTION_UNSAFE = re.compile(r"[^a-zA-Z0-9_\-]")
_DESCRIPTION_UNSAFE = re.compile(r"[^a-zA-Z0-9\-_. ()':,;?]")

# Time budget of the phases around training, added to each project's training timeout.
SPLIT_BUDGET_SECONDS = 3600
MODEL_START_BUDGET_SECONDS = 3600
EXECUTION_MARGIN_SECONDS = 3600
LOCK_MARGIN_SECONDS = 3600


def version_name(project: str, now: datetime | None = None, suffix: str | None = None) -> str:
    """E.g. "digits.2026-11-21T18.00.00.a1b2c3" (the console's style, plus a random suffix)."""
    stamp = (now or clock.utcnow()).astimezone(UTC).strftime("%Y-%m-%dT%H.%M.%S")
    tail = f".{stamp}.{suffix or secrets.token_hex(3)}"
    head = _VERSION_UNSAFE.sub("-", project)[: VERSION_NAME_MAX - len(tail)]
    return f"{head}{tail}"


def is_version_name_of(project: str, name: str) -> bool:
    """True for a name `version_name` gives (the training workflow's own versions)."""
    head = re.escape(_VERSION_UNSAFE.sub("-", project))
    return re.fullmatch(rf"{head}\.\d{{4}}-\d\d-\d\dT\d\d\.\d\d\.\d\d\.[0-9a-zA-Z]+", name) is not None


def execution_name(project: str, now: datetime | None = None, suffix: str | None = None) -> str:
    """E.g. "digits-20261121T180000Z-a1b2c3": doubles as the training lock token."""
    stamp = (now or clock.utcnow()).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    tail = f"-{stamp}-{suffix or secrets.token_hex(3)}"
    head = _EXECUTION_UNSAFE.sub("-", project)[: EXECUTION_NAME_MAX - len(tail)]
    return f"{head}{tail}"


def version_description(text: str) -> str:
    """Makes `text` a valid VersionDescription (1-255 chars of [a-zA-Z0-9-_. ()':,;?])."""
    cleaned = _DESCRIPTION_UNSAFE.sub(" ", text).strip() or "Trained by autopilot"
    return cleaned[:VERSION_DESCRIPTION_MAX]


def training_polls(project: ProjectSettings) -> int:
    """How many status checks fit in the project's training timeout."""
    return max(1, math.ceil(project.training_timeout_hours * 3600 / project.training_poll_seconds))


def split_polls(project: ProjectSettings) -> int:
    return max(1, math.ceil(SPLIT_BUDGET_SECONDS / project.training_poll_seconds))


def model_start_polls(project: ProjectSettings) -> int:
    return max(1, math.ceil(MODEL_START_BUDGET_SECONDS / project.model_poll_seconds))


def execution_timeout_seconds(settings: AppSettings) -> int:
    """State machine timeout: the longest configured training plus split, model start and margin."""
    longest = max(project.training_timeout_hours for project in settings.projects.values())
    return longest * 3600 + SPLIT_BUDGET_SECONDS + MODEL_START_BUDGET_SECONDS + EXECUTION_MARGIN_SECONDS


def lock_ttl_seconds(settings: AppSettings) -> int:
    """The training lock outlives the longest possible execution, so a lost release cannot block forever."""
    return execution_timeout_seconds(settings) + LOCK_MARGIN_SECONDS
