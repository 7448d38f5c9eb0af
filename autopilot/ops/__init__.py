"""Operator commands: status, entries, labels, dataset, train, start/stop, promote/rollback, detect,
tail, project delete, queues, redrive, cost.

They work against AWS (default boto3 configuration, resources found through the CloudFormation
stack) or against the local stack (`autopilot local serve` writes an env file; pass it with
--env-file or use --local).
"""

from __future__ import annotations

import argparse

from autopilot.ops import (
    cost,
    dataset_admin,
    datasets,
    detect,
    models,
    projects,
    queues,
    report,
    status,
    tail,
)


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for module in (status, datasets, dataset_admin, models, detect, tail, projects, queues, cost, report):
        module.register(commands)
