"""SQS queues: names and attributes, then the queues with their template properties (dead-letter
queues first, so every redrive policy finds its target)."""

from __future__ import annotations

import json

from autopilot.local.runtime.context import StackContext
from autopilot.local.template import physical_name

QUEUE_TYPE = "AWS::SQS::Queue"
_COPIED_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
)


def assign_ids(ctx: StackContext) -> None:
    r = ctx.resolver
    for lid, res in r.resources_of_type(QUEUE_TYPE).items():
        props = res.get("Properties") or {}
        fifo = bool(props.get("FifoQueue"))
        name = str(props.get("QueueName") or physical_name(lid, 75) + (".fifo" if fifo else ""))
        r.physical_ids[lid] = f"https://sqs.{ctx.region}.amazonaws.com/{ctx.account}/{name}"
        r.attributes[(lid, "Arn")] = f"arn:aws:sqs:{ctx.region}:{ctx.account}:{name}"
        r.attributes[(lid, "QueueName")] = name
        r.attributes[(lid, "QueueUrl")] = r.physical_ids[lid]


def create_queues(ctx: StackContext) -> None:
    sqs = ctx.client("sqs")
    queues = ctx.of_type(QUEUE_TYPE)
    ordered = sorted(
        queues, key=lambda lid: 1 if (queues[lid].get("Properties") or {}).get("RedrivePolicy") else 0
    )
    for lid in ordered:
        props = ctx.resolver.resolved_properties(lid)
        attributes = {key: str(props[key]) for key in _COPIED_ATTRIBUTES if key in props}
        if props.get("FifoQueue"):
            attributes["FifoQueue"] = "true"
        if props.get("ContentBasedDeduplication"):
            attributes["ContentBasedDeduplication"] = "true"
        if props.get("RedrivePolicy"):
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        url = sqs.create_queue(QueueName=ctx.resolver.attributes[(lid, "QueueName")], Attributes=attributes)[
            "QueueUrl"
        ]
        ctx.resolver.physical_ids[lid] = url
        ctx.resolver.attributes[(lid, "QueueUrl")] = url
        ctx.queue_visibility[ctx.resolver.attributes[(lid, "Arn")]] = int(props.get("VisibilityTimeout", 30))


def dead_letter_depths(ctx: StackContext) -> dict[str, int]:
    """Messages waiting in every queue that some redrive policy points at."""
    sqs = ctx.client("sqs")
    targets = set()
    for lid in ctx.of_type(QUEUE_TYPE):
        policy = ctx.resolver.resolved_properties(lid).get("RedrivePolicy") or {}
        if policy.get("deadLetterTargetArn"):
            targets.add(str(policy["deadLetterTargetArn"]))
    depths = {}
    for arn in sorted(targets):
        attributes = sqs.get_queue_attributes(
            QueueUrl=ctx.queue_url(arn), AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        depths[arn.rsplit(":", 1)[1]] = int(attributes.get("ApproximateNumberOfMessages", 0))
    return depths
