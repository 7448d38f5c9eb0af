"""Test helpers: run the engine for the duration of a ``with`` block.

from autopilot.engine.testing import running_engine
with running_engine(time_scale=0.01) as engine:
    boto3.client("rekognition").describe_projects()   # reaches the engine
    engine.faults.throttle("DetectCustomLabels")
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autopilot.engine.config import EngineConfig
from autopilot.engine.faults import FaultInjector
from autopilot.engine.server import EngineServer

ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_REKOGNITION"


@dataclass
class RunningEngine:
    server: EngineServer
    url: str

    @property
    def faults(self) -> FaultInjector:
        return self.server.faults

    @property
    def config(self) -> EngineConfig:
        return self.server.config

    def client(self, region: str | None = None) -> Any:
        """A boto3 Rekognition client pointed at this engine."""
        import boto3

        return boto3.client(
            "rekognition", endpoint_url=self.url, region_name=region or self.server.config.default_region
        )


@contextmanager
def running_engine(
    time_scale: float = 0.01,
    data_dir: Path | str | None = None,
    set_env: bool = True,
    **config: Any,
) -> Iterator[RunningEngine]:
    """Starts the engine on a free port, sets AWS_ENDPOINT_URL_REKOGNITION (restored on exit)."""
    server = EngineServer(EngineConfig(time_scale=time_scale, data_dir=data_dir, **config))
    url = server.start(host="127.0.0.1", port=0)
    previous = os.environ.get(ENDPOINT_VARIABLE)
    if set_env:
        os.environ[ENDPOINT_VARIABLE] = url
    try:
        yield RunningEngine(server, url)
    finally:
        if set_env:
            if previous is None:
                os.environ.pop(ENDPOINT_VARIABLE, None)
            else:
                os.environ[ENDPOINT_VARIABLE] = previous
        server.stop(wait_for_training=30.0)
