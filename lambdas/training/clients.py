"""Base of the training classes that call one AWS service."""

from __future__ import annotations

from typing import Any, ClassVar

from lambdas.common import aws


class ServiceGateway:
    """Takes an injected client (tests) or creates the shared one for `SERVICE` on first use."""

    SERVICE: ClassVar[str]

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client(self.SERVICE)
        return self._client
