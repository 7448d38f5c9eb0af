"""One provider per resource type: each assigns the physical ids and attributes its resources
answer Ref and Fn::GetAtt with (all before anything is created, so properties can reference one
another), then creates them in moto. `provision` runs the steps in dependency order."""

from __future__ import annotations

from autopilot.local import stepfunctions
from autopilot.local.runtime.context import StackContext
from autopilot.local.runtime.providers import (
    dynamodb,
    events,
    iam,
    lambda_functions,
    s3,
    scheduler,
    sns,
    sqs,
    ssm,
)


def assign_ids(ctx: StackContext) -> None:
    for provider in (s3, sqs, sns, dynamodb, ssm, lambda_functions, events, scheduler, iam):
        provider.assign_ids(ctx)
    stepfunctions.assign_state_machine_ids(ctx.resolver)


def provision(ctx: StackContext) -> None:
    """Creates every supported resource in the active moto backend and registers the functions."""
    assign_ids(ctx)
    sns.create_topics(ctx)
    sqs.create_queues(ctx)
    s3.create_buckets(ctx)
    dynamodb.create_tables(ctx)
    ssm.create_parameters(ctx)
    lambda_functions.register_functions(ctx)
    ctx.state_machines.update(stepfunctions.create_state_machines(ctx.client("stepfunctions"), ctx.resolver))
    sns.create_subscriptions(ctx)
    lambda_functions.create_mappings(ctx)
    s3.create_notifications(ctx)
    events.create_buses_and_rules(ctx)
    scheduler.create_schedules(ctx)
    sns.observe_topics(ctx)
