"""Builds the CDK app from cdk.json context; shared by app.py, the tests and the local runtime."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.stack import AutopilotStack
from lambdas.common.settings import load_cdk_context, settings_from_context

REPO_ROOT = Path(__file__).resolve().parents[1]
STACK_NAME = "CustomLabelsAutopilot"


def build_app(
    outdir: str | None = None, context_overrides: dict[str, Any] | None = None, nag: bool = True
) -> tuple[App, AutopilotStack]:
    """Synth needs no credentials: the environment stays agnostic unless CDK_DEFAULT_* are set."""
    context = load_cdk_context(str(REPO_ROOT / "cdk.json"))
    context.update(context_overrides or {})
    # The CDK CLI passes its output folder (`cdk synth --output X`) as CDK_OUTDIR; `python app.py`
    # alone writes to cdk.out at the repository root.
    app = App(outdir=outdir or os.environ.get("CDK_OUTDIR") or str(REPO_ROOT / "cdk.out"), context=context)
    settings = settings_from_context(context)
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    env = Environment(account=account, region=region) if account and region else None
    stack = AutopilotStack(app, STACK_NAME, settings=settings, env=env)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack
