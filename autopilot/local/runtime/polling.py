"""Event-source polling: the one SQS poller of the local runtime. It feeds a queue's messages to a
function the way Lambda's event source mapping does (BatchSize, MaximumBatchingWindowInSeconds on
the runtime's clock, ReportBatchItemFailures; a failed message becomes visible again after the
queue's visibility timeout on the runtime's clock, and moto moves it to the dead-letter queue after
maxReceiveCount), and drains the runtime's tap queues."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autopilot.local.lambda_service import Invocation
from autopilot.local.runtime.context import StackContext
from autopilot.local.wiring import EventSourceMapping

_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "MessageGroupId",
    "MessageDeduplicationId",
    "SequenceNumber",
)


@dataclass(frozen=True)
class BatchOutcome:
    """One batch handed to a function: how many messages, and how many came back as failures."""

    handed: int = 0
    failed: int = 0


class SqsPoller:
    def __init__(self, ctx: StackContext) -> None:
        self.ctx = ctx

    def receive(self, queue_url: str, maximum: int) -> list[dict[str, Any]]:
        """Up to `maximum` visible messages, in receives of at most ten, without waiting."""
        sqs = self.ctx.client("sqs")
        messages: list[dict[str, Any]] = []
        while len(messages) < maximum:
            batch = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(10, maximum - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not batch:
                break
            messages.extend(batch)
        return messages

    def receive_and_delete(self, queue_url: str, maximum: int = 10) -> list[dict[str, Any]]:
        sqs = self.ctx.client("sqs")
        messages = self.receive(queue_url, maximum)
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return messages

    def depth(self, queue_url: str) -> int:
        """Messages in the queue: visible, in flight and delayed."""
        attributes = self.ctx.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])[
            "Attributes"
        ]
        return sum(
            int(attributes.get(name, 0))
            for name in (
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            )
        )

    def batch_ready(self, mapping: EventSourceMapping) -> bool:
        """MaximumBatchingWindowInSeconds: wait for a full batch, as the poller does (on the clock)."""
        if mapping.batching_window_s <= 0 or mapping.batch_size <= 1:
            return True
        attributes = self.ctx.client("sqs").get_queue_attributes(
            QueueUrl=mapping.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        waiting = int(attributes.get("ApproximateNumberOfMessages", 0))
        if waiting == 0:
            mapping.pending_since = None
            return False
        if waiting >= mapping.batch_size:
            return True
        now = self.ctx.clock.now().timestamp()
        if mapping.pending_since is None:
            mapping.pending_since = now
        return now - mapping.pending_since >= mapping.batching_window_s

    def poll(self, mapping: EventSourceMapping, invoke: Callable[[str, Any], Invocation]) -> BatchOutcome:
        """One batch from the mapping's queue to its function (nothing when no batch is ready)."""
        if not self.batch_ready(mapping):
            return BatchOutcome()
        iam = self.ctx.iam
        if iam is not None and not iam.mapping_allowed(mapping.function_name, mapping.queue_url):
            mapping.enabled = False  # Lambda stops polling a queue its role cannot read
            return BatchOutcome()
        mapping.pending_since = None
        messages = self.receive(mapping.queue_url, mapping.batch_size)
        if not messages:
            return BatchOutcome()
        event = {"Records": [self.record(message, mapping.queue_arn) for message in messages]}
        record = invoke(mapping.function_name, event)
        failed: set[str] = set()
        if record.error is not None:
            failed = {message["MessageId"] for message in messages}
        elif mapping.report_batch_item_failures and isinstance(record.result, dict):
            failures = record.result.get("batchItemFailures") or []
            failed = {str(item.get("itemIdentifier")) for item in failures}
            if any(not item.get("itemIdentifier") for item in failures):
                failed = {message["MessageId"] for message in messages}  # malformed report: retry all
        sqs = self.ctx.client("sqs")
        retry_after = max(0, round(self.ctx.clock.real_seconds(mapping.visibility_timeout_s)))
        for message in messages:
            if message["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=mapping.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=retry_after,
                )
            else:
                sqs.delete_message(QueueUrl=mapping.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return BatchOutcome(handed=len(messages), failed=len(failed & {m["MessageId"] for m in messages}))

    def record(self, message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
        """The SQS record of a Lambda event, as the event source mapping builds it."""
        attributes = {
            key: str(value)
            for key, value in (message.get("Attributes") or {}).items()
            if key in _RECORD_ATTRIBUTES
        }
        attributes.setdefault("ApproximateReceiveCount", "1")
        attributes.setdefault("SentTimestamp", str(int(time.time() * 1000)))
        attributes.setdefault("SenderId", self.ctx.account)
        attributes.setdefault("ApproximateFirstReceiveTimestamp", attributes["SentTimestamp"])
        message_attributes = {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in (message.get("MessageAttributes") or {}).items()
        }
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": self.ctx.region,
        }
