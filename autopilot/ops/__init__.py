"""Operator commands: status, entries, labels, train, start/stop, promote/rollback, detect, tail.

They work against AWS (default boto3 configuration, resources found through the CloudFormation
stack) or against the local stack (`autopilot local serve` writes an env file; pass it with
--env-file or use --local).
"""

from __future__ import annotations

import argparse

from autopilot.ops import datasets, detect, models, status, tail


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for module in (status, datasets, models, detect, tail):
        module.register(commands)
