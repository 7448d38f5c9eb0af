"""On the local runtime, a message that keeps failing in each of the app's work queues is received
5 times (docs/ingestion.md, docs/serving.md: "dead-letter queue after 5 receives") and then waits
in that queue's dead-letter queue, from where it can be redriven."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest

from autopilot.local.runtime import LocalRuntime, running_stack
from autopilot.local.template import synth_template

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-stack")]

DOCUMENTED_RECEIVES = 5
# Fast enough that the ingestion queue's 30-minute visibility timeout passes in under a second.
SPEED = 7200.0


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalRuntime]:
    with running_stack(synth_template(), clock_speed=SPEED) as stack:
        stack.pause_schedules("")  # only the queues matter here
        yield stack


@pytest.mark.parametrize("construct", ["Ingestion", "Detection"])
def test_a_failing_message_reaches_the_dead_letter_queue_after_5_receives(
    runtime: LocalRuntime, construct: str
) -> None:
    sqs = boto3.client("sqs")
    (queue,) = runtime.find("AWS::SQS::Queue", f"{construct}/Queue")
    (dlq,) = runtime.find("AWS::SQS::Queue", f"{construct}/DeadLetters")
    queue_url = sqs.get_queue_url(QueueName=runtime.physical(queue).rsplit("/", 1)[-1])["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=runtime.physical(dlq).rsplit("/", 1)[-1])["QueueUrl"]
    # Given a message no handler can read (not JSON: the record fails every time)
    message_id = sqs.send_message(QueueUrl=queue_url, MessageBody=f"not json for {construct}")["MessageId"]

    def dead_lettered() -> list[dict[str, object]]:
        found = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=0
        ).get("Messages", [])
        return [m for m in found if m["MessageId"] == message_id]

    # When the runtime delivers it until it is dead-lettered
    assert runtime.run_until(lambda: bool(dead_lettered()), timeout_s=60)
    # Then its handler saw it exactly 5 times and failed it each time (a batch whose records all
    # fail ends the invocation in an error, which fails every record of it)
    receipts = [
        invocation
        for invocation in runtime.lambdas.invocations
        if construct in invocation.function_name
        and any(r.get("messageId") == message_id for r in (invocation.event or {}).get("Records", []))
    ]
    assert len(receipts) == DOCUMENTED_RECEIVES
    for invocation in receipts:
        failed = [item["itemIdentifier"] for item in (invocation.result or {}).get("batchItemFailures", [])]
        assert invocation.error is not None or message_id in failed, json.dumps(invocation.result)
    # And nothing of it is left in the work queue
    left = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert int(left["ApproximateNumberOfMessages"]) + int(left["ApproximateNumberOfMessagesNotVisible"]) == 0
