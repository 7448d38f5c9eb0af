"""SNS topics and subscriptions. A Lambda subscription is fed through a tap queue (moto does not
invoke Lambda); every topic also gets an observer queue, so the runtime can show what was published."""

from __future__ import annotations

import json
from typing import Any

from autopilot.local.runtime.context import StackContext
from autopilot.local.template import physical_name
from autopilot.local.wiring import Target

TOPIC_TYPE = "AWS::SNS::Topic"
SUBSCRIPTION_TYPE = "AWS::SNS::Subscription"


def assign_ids(ctx: StackContext) -> None:
    r = ctx.resolver
    for lid, res in r.resources_of_type(TOPIC_TYPE).items():
        props = res.get("Properties") or {}
        fifo = bool(props.get("FifoTopic"))
        name = str(props.get("TopicName") or physical_name(lid, 250) + (".fifo" if fifo else ""))
        arn = f"arn:aws:sns:{ctx.region}:{ctx.account}:{name}"
        r.physical_ids[lid] = arn
        r.attributes[(lid, "TopicArn")] = arn
        r.attributes[(lid, "TopicName")] = name


def create_topics(ctx: StackContext) -> None:
    sns = ctx.client("sns")
    for lid, res in ctx.of_type(TOPIC_TYPE).items():
        props = ctx.resolver.resolve(res.get("Properties") or {})
        attributes = {}
        if props.get("FifoTopic"):
            attributes["FifoTopic"] = "true"
        if props.get("ContentBasedDeduplication"):
            attributes["ContentBasedDeduplication"] = "true"
        if props.get("DisplayName"):
            attributes["DisplayName"] = str(props["DisplayName"])
        name = ctx.resolver.attributes[(lid, "TopicName")]
        arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
        ctx.resolver.physical_ids[lid] = arn
        for subscription in props.get("Subscription") or []:
            subscribe(ctx, lid, arn, subscription.get("Protocol"), subscription.get("Endpoint"), {})


def create_subscriptions(ctx: StackContext) -> None:
    for lid in ctx.of_type(SUBSCRIPTION_TYPE):
        props = ctx.resolver.resolved_properties(lid)
        attributes = {}
        if props.get("FilterPolicy"):
            attributes["FilterPolicy"] = json.dumps(props["FilterPolicy"])
        if props.get("FilterPolicyScope"):
            attributes["FilterPolicyScope"] = str(props["FilterPolicyScope"])
        if props.get("RawMessageDelivery"):
            attributes["RawMessageDelivery"] = "true"
        if props.get("RedrivePolicy"):
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        subscribe(ctx, lid, str(props["TopicArn"]), props.get("Protocol"), props.get("Endpoint"), attributes)


def subscribe(
    ctx: StackContext, lid: str, topic_arn: str, protocol: Any, endpoint: Any, attributes: dict[str, str]
) -> None:
    sns = ctx.client("sns")
    if protocol == "lambda":
        tap = ctx.tap_queue("sns-lambda", lid, [Target(arn=str(endpoint))])
        attributes = {key: value for key, value in attributes.items() if key != "RawMessageDelivery"}
        tap.subscription_arn = sns.subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=ctx.queue_arn(tap.queue_url), Attributes=attributes
        )["SubscriptionArn"]
        return
    if protocol in ("sqs", "email", "email-json", "sms", "http", "https"):
        sns.subscribe(
            TopicArn=topic_arn, Protocol=str(protocol), Endpoint=str(endpoint), Attributes=attributes
        )


def observe_topics(ctx: StackContext) -> None:
    sns = ctx.client("sns")
    for lid in ctx.of_type(TOPIC_TYPE):
        tap = ctx.tap_queue("observer", lid, [])
        sns.subscribe(
            TopicArn=ctx.resolver.physical_ids[lid], Protocol="sqs", Endpoint=ctx.queue_arn(tap.queue_url)
        )
