"""PLACEHOLDER: replaced by the ingestion work. Keeps the stack composable meanwhile."""

from __future__ import annotations

from typing import Any

from constructs import Construct


class Ingestion(Construct):
    def __init__(self, scope: Construct, construct_id: str, **_: Any) -> None:
        super().__init__(scope, construct_id)
