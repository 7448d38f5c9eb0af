"""`autopilot tail`: follow lifecycle events (and optionally detections) as they are published.

A temporary SQS queue is subscribed to the topic(s) for the duration of the command and removed
afterwards (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
import uuid
from typing import Any

from autopilot.ops.context import DETECTIONS_TOPIC, LIFECYCLE_TOPIC, Context, add_command
from lambdas.common.constants import ATTR_PROJECT


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = add_command(commands, "tail", tail)
    parser.add_argument("--project", help="only this project (SNS filter policy on the project attribute)")
    parser.add_argument("--detections", action="store_true", help="also follow the detections topic")
    parser.add_argument("--max-events", type=int, help="stop after this many events")
    parser.add_argument("--timeout", type=float, help="stop after this many seconds")


def _queue_policy(queue_arn: str, topic_arns: list[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic_arns}},
                }
            ],
        }
    )


def format_event(message: dict[str, Any]) -> str:
    body: Any
    try:
        body = json.loads(message.get("Message", ""))
    except ValueError:
        body = message.get("Message")
    if isinstance(body, dict) and "type" in body:
        detail = body.get("detail") or {}
        brief = ", ".join(f"{k}={v}" for k, v in detail.items() if not isinstance(v, (dict, list)))
        return f"{body.get('time', '')}  {body.get('project', '?'):<12} {body['type']:<20} {brief}"
    if isinstance(body, dict) and "top_label" in body:
        key = (body.get("image") or {}).get("key", "?")
        return (
            f"{body.get('detected_at', '')}  {body.get('project', '?'):<12} detection {body.get('status')} "
            f"{body.get('top_label')} {body.get('confidence')} {key}"
        )
    return str(body)


def tail(context: Context) -> int:
    """follow lifecycle events (and detections) live

    Subscribes a temporary queue to the lifecycle topic and prints events until interrupted,
    --max-events or --timeout.
    """

    args = context.args
    sqs, sns = context.client("sqs"), context.client("sns")
    topics = [str(context.resources.find(LIFECYCLE_TOPIC))]
    if args.detections:
        topics.append(str(context.resources.find(DETECTIONS_TOPIC)))
    queue_url = sqs.create_queue(QueueName=f"autopilot-tail-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    subscriptions: list[str] = []
    count = 0
    try:
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": _queue_policy(queue_arn, topics)})
        attributes = {"FilterPolicy": json.dumps({ATTR_PROJECT: [args.project]})} if args.project else {}
        for topic in topics:
            subscriptions.append(
                sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes)[
                    "SubscriptionArn"
                ]
            )
        context.progress(f"following {', '.join(t.rsplit(':', 1)[-1] for t in topics)} (Ctrl-C to stop)")
        deadline = time.monotonic() + args.timeout if args.timeout else None
        while deadline is None or time.monotonic() < deadline:
            wait = 20 if deadline is None else max(0, min(20, int(deadline - time.monotonic())))
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
            ).get("Messages", [])
            for message in messages:
                envelope = json.loads(message["Body"])
                if context.json:
                    try:
                        payload = json.loads(envelope.get("Message", ""))
                    except ValueError:
                        payload = envelope.get("Message")
                    context.out.write(json.dumps(payload, default=str) + "\n")
                else:
                    context.out.write(format_event(envelope) + "\n")
                context.out.flush()
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                count += 1
                if args.max_events and count >= args.max_events:
                    return 0
            if not messages and deadline is None:
                continue
    except KeyboardInterrupt:
        return 0
    finally:
        for subscription in subscriptions:
            with contextlib.suppress(Exception):
                sns.unsubscribe(SubscriptionArn=subscription)
        with contextlib.suppress(Exception):
            sqs.delete_queue(QueueUrl=queue_url)
    return 0
