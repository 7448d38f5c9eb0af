"""The engine's operation registry: each operation module registers its handlers here on import.

The registry knows handlers only by their signature; `autopilot.engine.operations` imports every
operation module and dispatches requests, so the engine itself never imports an operation module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autopilot.engine.backend import Engine

Handler = Callable[[Engine, dict[str, Any], str], dict[str, Any]]


@dataclass(frozen=True)
class Registration:
    handler: Handler
    locked: bool  # runs under the engine lock (detection takes it only briefly, itself)
    mutates: bool  # changes state (read-only operations do not rewrite the persisted state)


REGISTRY: dict[str, Registration] = {}


def operation(name: str, locked: bool = True, mutates: bool = True) -> Callable[[Handler], Handler]:
    """Registers the decorated function as the handler of the Rekognition operation `name`."""

    def register(func: Handler) -> Handler:
        REGISTRY[name] = Registration(func, locked, mutates)
        return func

    return register
