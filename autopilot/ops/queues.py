"""`autopilot queues` (what waits where) and `autopilot redrive QUEUE` (dead letters back to work).

Queues are the stack's SQS queues; a work queue's dead-letter queue comes from its RedrivePolicy.
Depth, in flight and delayed are the queue's approximate attributes. The age of the oldest message
is the CloudWatch metric ApproximateAgeOfOldestMessage (AWS/SQS, last 5 minutes; SQS has no
attribute for it, and reading messages to find out would spend their receive counts), so it is
unknown (null) where CloudWatch has no data point, e.g. on the local stack.

`redrive` moves every message of a dead-letter queue back to its source queue: on AWS with an SQS
message move task (StartMessageMoveTask, followed until it ends); on the local stack, whose SQS
has no move tasks, by receiving, sending to the source queue and deleting, batch by batch (the
same result: each message moved once, the body and attributes kept).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from autopilot.ops.context import (
    EXIT_FAILURE,
    EXIT_NOT_FOUND,
    STATE_TABLE,
    CommandError,
    Context,
    add_command,
)
from lambdas.common.constants import (
    OUTPUT_DEAD_LETTER_QUEUES,
    OUTPUT_WORK_QUEUES,
)
from lambdas.ingestion.staging import StagingStore

COUNTS = {
    "visible": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}


@dataclass
class QueueInfo:
    name: str
    url: str
    arn: str
    dead_letter_of: str | None  # the work queue whose RedrivePolicy names this queue
    dead_letter_queue: str | None  # this queue's dead-letter queue
    visible: int = 0
    in_flight: int = 0
    delayed: int = 0
    oldest_age_s: float | None = None


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    queues = add_command(commands, "queues", show_queues, __doc__, raw=True)
    queues.add_argument("--project", action="append", help="staged lines of this project (repeatable)")

    redrive = add_command(commands, "redrive", redrive_queue, __doc__, raw=True)
    redrive.add_argument("queue", help="a queue name, a part of it (e.g. ingestion, detection) or its DLQ's")
    redrive.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the move")
    redrive.add_argument("--interval", type=float, default=5.0, help="seconds between checks (AWS)")


def stack_queues(context: Context) -> list[QueueInfo]:
    """Every SQS queue of the stack, with its dead-letter relations and counts."""
    sqs = context.client("sqs")
    keys = (*OUTPUT_WORK_QUEUES, *OUTPUT_DEAD_LETTER_QUEUES)
    urls = sorted({url for url in (context.resources.find(key, required=False) for key in keys) if url})
    infos: dict[str, QueueInfo] = {}
    redrive_targets: dict[str, str] = {}
    for url in urls:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        info = QueueInfo(
            name=url.rsplit("/", 1)[1],
            url=url,
            arn=attributes["QueueArn"],
            dead_letter_of=None,
            dead_letter_queue=None,
            **{field: int(attributes.get(name, 0)) for field, name in COUNTS.items()},
        )
        infos[info.arn] = info
        policy = attributes.get("RedrivePolicy")
        if policy:
            redrive_targets[info.arn] = json.loads(policy)["deadLetterTargetArn"]
    for source_arn, dlq_arn in redrive_targets.items():
        if dlq_arn in infos:
            infos[source_arn].dead_letter_queue = infos[dlq_arn].name
            infos[dlq_arn].dead_letter_of = infos[source_arn].name
    for info in infos.values():
        info.oldest_age_s = _oldest_age(context, info.name)
    return sorted(infos.values(), key=lambda q: (q.dead_letter_of or q.name, q.dead_letter_of is not None))


def _oldest_age(context: Context, queue_name: str) -> float | None:
    now = datetime.now(UTC)
    try:
        points = (
            context.client("cloudwatch")
            .get_metric_statistics(
                Namespace="AWS/SQS",
                MetricName="ApproximateAgeOfOldestMessage",
                Dimensions=[{"Name": "QueueName", "Value": queue_name}],
                StartTime=now - timedelta(minutes=5),
                EndTime=now,
                Period=60,
                Statistics=["Maximum"],
            )
            .get("Datapoints", [])
        )
    except (ClientError, BotoCoreError):  # informative only: no permission or no CloudWatch = unknown
        return None
    if not points:
        return None
    return float(max(points, key=lambda p: p["Timestamp"])["Maximum"])


def staged_lines(context: Context, project: str) -> dict[str, int]:
    """Lines waiting in the state table for a dataset update, per dataset type."""
    store = StagingStore(str(context.resources.find(STATE_TABLE)), client=context.client("dynamodb"))
    return store.staged_counts(project)


def show_queues(context: Context) -> int:
    """depth, in flight, delayed and oldest age of every queue and dead-letter queue; staged lines"""

    from autopilot.ops.status import configured_projects

    queues = stack_queues(context)
    projects = context.args.project or configured_projects(context)
    staged = {project: staged_lines(context, project) for project in projects}

    def text() -> str:
        rows = [f"{'queue':<58} {'visible':>8} {'flight':>7} {'delayed':>8} {'oldest':>8}"]
        for queue in queues:
            name = ("  dlq " if queue.dead_letter_of else "") + queue.name
            age = "-" if queue.oldest_age_s is None else f"{queue.oldest_age_s:.0f}s"
            rows.append(f"{name:<58} {queue.visible:>8} {queue.in_flight:>7} {queue.delayed:>8} {age:>8}")
        for project, counts in staged.items():
            waiting = ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items())) or "none"
            rows.append(f"staged lines of {project}: {waiting}")
        return "\n".join(rows)

    context.emit({"queues": [asdict(q) for q in queues], "staged": staged}, text)
    return 0


def _resolve(queues: list[QueueInfo], wanted: str) -> tuple[QueueInfo, QueueInfo]:
    """(dead-letter queue, its source queue) for a name or part of a name of either."""
    by_name = {q.name: q for q in queues}
    pairs = [
        (q, by_name[q.dead_letter_of]) for q in queues if q.dead_letter_of and q.dead_letter_of in by_name
    ]
    exact = [pair for pair in pairs if wanted in (pair[0].name, pair[1].name)]
    matches = exact or [
        pair
        for pair in pairs
        if wanted.lower() in pair[0].name.lower() or wanted.lower() in pair[1].name.lower()
    ]
    if not matches:
        names = ", ".join(source.name for _, source in pairs)
        raise CommandError(
            f"no queue with a dead-letter queue matches {wanted!r}; queues: {names}", EXIT_NOT_FOUND
        )
    if len(matches) > 1:
        names = ", ".join(source.name for _, source in matches)
        raise CommandError(
            f"{wanted!r} matches several queues ({names}); give more of the name", EXIT_FAILURE
        )
    return matches[0]


def redrive_queue(context: Context) -> int:
    """move the messages of a dead-letter queue back to its source queue"""

    dead_letters, source = _resolve(stack_queues(context), context.args.queue)
    if context.local:
        moved = _move_locally(context, dead_letters, source)
        mode = "receive-send-delete"
    else:
        moved = _move_task(context, dead_letters)
        mode = "message move task"
    result = {"from": dead_letters.name, "to": source.name, "moved": moved, "mode": mode}
    context.emit(result, f"moved {moved} messages from {dead_letters.name} back to {source.name} ({mode})")
    return 0


def _move_task(context: Context, dead_letters: QueueInfo) -> int:
    sqs = context.client("sqs")
    handle = sqs.start_message_move_task(SourceArn=dead_letters.arn)["TaskHandle"]

    def finished() -> Any:
        for task in sqs.list_message_move_tasks(SourceArn=dead_letters.arn, MaxResults=10).get("Results", []):
            if task.get("TaskHandle") == handle and task.get("Status") in (
                "COMPLETED",
                "FAILED",
                "CANCELLED",
            ):
                return task
        return None

    task = context.wait(finished, lambda _: f"moving messages from {dead_letters.name}")
    if task["Status"] != "COMPLETED":
        raise CommandError(f"the message move task ended {task['Status']}: {task.get('FailureReason', '')}")
    return int(task.get("ApproximateNumberOfMessagesMoved", 0))


def _move_locally(context: Context, dead_letters: QueueInfo, source: QueueInfo) -> int:
    sqs = context.client("sqs")
    moved = 0
    for _ in range(100_000):  # bounded: at most a million messages
        batch = sqs.receive_message(
            QueueUrl=dead_letters.url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=300,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not batch:
            return moved
        entries = []
        for index, message in enumerate(batch):
            entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            entries.append(entry)
        sent = sqs.send_message_batch(QueueUrl=source.url, Entries=entries)
        ok = {item["Id"] for item in sent.get("Successful", [])}
        done = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(batch)
            if str(index) in ok
        ]
        if done:
            sqs.delete_message_batch(QueueUrl=dead_letters.url, Entries=done)
        moved += len(done)
        if len(done) < len(batch):
            raise CommandError(
                f"moved {moved}; SQS refused some messages: {sent.get('Failed')}; run the command again",
                EXIT_FAILURE,
            )
    return moved
