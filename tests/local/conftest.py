"""Fixtures of the local runtime tests: one synthesized template per pytest worker."""

from __future__ import annotations

from typing import Any

import pytest

from autopilot.local.template import synth_template


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return synth_template(outdir=str(tmp_path_factory.mktemp("cdk-out")))
