"""One synthesized stack shared by the template checks that need the whole application."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.app_factory import build_app


@dataclass(frozen=True)
class Synthesized:
    stack: Any  # the AutopilotStack, to name constructs by their logical ids
    template: dict[str, Any]
    template_path: Path


@pytest.fixture(scope="session")
def whole_stack(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    outdir = tmp_path_factory.mktemp("whole-stack")
    app, stack = build_app(outdir=str(outdir), nag=False)
    artifact = app.synth().get_stack_by_name(stack.stack_name)
    return Synthesized(stack, dict(artifact.template), outdir / artifact.template_file)
