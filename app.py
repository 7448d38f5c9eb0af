#!/usr/bin/env python3
"""CDK entry point: `cdk synth` / `cdk deploy`. Settings come from cdk.json context."""

from infra.app_factory import build_app

app, _ = build_app()
app.synth()
