"""Queues: the one way the stack makes an SQS work queue, its dead-letter queue and their alarm.

Every queue is encrypted with the stack's key and refuses plain HTTP; every work queue has a
dead-letter queue, and every dead-letter queue an alarm that notifies the lifecycle topic.
"""

from __future__ import annotations

from dataclasses import dataclass

import jsii
from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.interfaces.aws_s3 import IBucketRef
from constructs import Construct

from infra.constructs.alarms import notifying_alarm

DEAD_LETTER_RETENTION = Duration.days(14)
WORK_RETENTION = Duration.days(4)


def dead_letter_queue(scope: Construct, construct_id: str, *, key: kms.IKey, holds: str) -> sqs.Queue:
    """A KMS-encrypted, TLS-only queue that is itself a dead-letter queue (`holds` says of what)."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=DEAD_LETTER_RETENTION,
    )
    Validations.of(queue).acknowledge(
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-SQS3",
            reason=f"This queue is the dead-letter queue itself: {holds} land here.",
        )
    )
    return queue


def dead_letter_alarm(
    scope: Construct, construct_id: str, *, dlq: sqs.IQueue, topic: sns.ITopic, description: str
) -> cloudwatch.Alarm:
    """Fires as soon as one message waits in `dlq`; notifies `topic`."""
    return notifying_alarm(
        scope,
        construct_id,
        description=description,
        metric=dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(1)),
        topic=topic,
    )


@dataclass(frozen=True)
class WorkQueue:
    queue: sqs.Queue
    dlq: sqs.Queue
    dlq_alarm: cloudwatch.Alarm


def work_queue(
    scope: Construct,
    *,
    key: kms.IKey,
    consumer_timeout: Duration,
    max_receive_count: int,
    alarm_topic: sns.ITopic,
    what: str,
) -> WorkQueue:
    """ "Queue", "DeadLetters" and "DeadLettersAlarm" in `scope`, for a Lambda consumer.

    The visibility timeout is six times the consumer's timeout (Lambda's guidance for SQS event
    sources), so a retried batch never overlaps the one still running.
    """
    dlq = dead_letter_queue(
        scope, "DeadLetters", key=key, holds=f"{what} that failed {max_receive_count} times"
    )
    queue = sqs.Queue(
        scope,
        "Queue",
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        visibility_timeout=Duration.seconds(consumer_timeout.to_seconds() * 6),
        retention_period=WORK_RETENTION,
        dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=max_receive_count),
    )
    alarm = dead_letter_alarm(
        scope,
        "DeadLettersAlarm",
        dlq=dlq,
        topic=alarm_topic,
        description=f"{what} failed repeatedly and wait in the dead-letter queue: inspect, fix, redrive",
    )
    return WorkQueue(queue=queue, dlq=dlq, dlq_alarm=alarm)


@jsii.implements(s3.IBucketNotificationDestination)
class ScopedQueueDestination:
    """S3 object notifications to a KMS-encrypted queue, S3's access scoped to one bucket and account.

    CDK's SqsDestination also adds an unconditioned key statement for s3.amazonaws.com; here both
    the queue policy and the key policy carry aws:SourceArn (the bucket) and aws:SourceAccount, the
    keys S3 sends with its notifications (S3 User Guide, "Granting permissions to publish event
    notification messages to a destination").
    """

    def __init__(self, queue: sqs.Queue, key: kms.IKey) -> None:
        self.queue = queue
        self.key = key
        self._bound: set[str] = set()

    def bind(self, scope: Construct, bucket: IBucketRef) -> s3.BucketNotificationDestinationConfig:
        bucket_arn = bucket.bucket_ref.bucket_arn
        if bucket.node.path not in self._bound:
            self._bound.add(bucket.node.path)
            conditions = {
                "ArnLike": {"aws:SourceArn": bucket_arn},
                "StringEquals": {"aws:SourceAccount": Stack.of(self.queue).account},
            }
            principal = iam.ServicePrincipal("s3.amazonaws.com")
            self.queue.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[principal],
                    actions=["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
                    resources=[self.queue.queue_arn],
                    conditions=conditions,
                )
            )
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[principal],
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    resources=["*"],
                    conditions=conditions,
                ),
                True,
            )
        return s3.BucketNotificationDestinationConfig(
            arn=self.queue.queue_arn,
            type=s3.BucketNotificationDestinationType.QUEUE,
            dependencies=[self.queue],
        )
