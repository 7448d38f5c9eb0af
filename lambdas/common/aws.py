"""Lazily created, cached boto3 clients.

Clients are built on first use (never at import time, so tests can start moto or point
AWS_ENDPOINT_URL_* at the local engine first) and reused across warm invocations. Every
integration class takes an optional client so tests can inject their own.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode: exponential backoff with jitter on throttling and 5xx, 5 attempts.
_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, user_agent_extra="custom-labels-autopilot")


@functools.cache
def client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forgets cached clients (tests that switch endpoints or moto contexts call this)."""
    client.cache_clear()
