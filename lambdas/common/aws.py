"""Lazily created, cached boto3 clients from one shared Session.

Clients are built on first use (never at import time, so tests can start moto or point
AWS_ENDPOINT_URL_* at the local engine first) and reused across warm invocations. They all come
from one boto3 Session per process, so the credential chain, the endpoint data and the service
models are resolved once, not once per client (a Session per client repeats that work and
lengthens every cold start). Every integration class takes an optional client so tests can inject
their own.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode: exponential backoff with jitter on throttling and 5xx, 5 attempts.
_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, user_agent_extra="custom-labels-autopilot")
# Creating clients from one Session is not thread-safe; clients themselves are.
_LOCK = threading.Lock()


@functools.cache
def session() -> boto3.session.Session:
    return boto3.session.Session()


@functools.cache
def client(service: str) -> Any:
    with _LOCK:
        return session().client(service, config=_CONFIG)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forgets cached clients and the Session (tests that switch endpoints or moto contexts call this)."""
    client.cache_clear()
    session.cache_clear()


class LazyClient:
    """A client attribute built on first use: `client = LazyClient("rekognition")` in a class body.

    The instance keeps an injected client (tests) in the attribute named `slot`; when that is None,
    the first read stores and returns the shared client of `service`.
    """

    def __init__(self, service: str, slot: str = "_client") -> None:
        self.service = service
        self.slot = slot

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        found = getattr(instance, self.slot, None)
        if found is None:
            found = client(self.service)
            setattr(instance, self.slot, found)
        return found


def iter_pages(
    call: Callable[..., dict[str, Any]], key: str, *, max_pages: int = 1000, **arguments: Any
) -> Iterator[Any]:
    """The items under `key` of every page of a NextToken-paginated call, at most `max_pages` pages."""
    for _ in range(max_pages):
        page = call(**arguments)
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return
        arguments["NextToken"] = token
