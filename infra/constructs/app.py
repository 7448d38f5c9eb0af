"""What the application's concerns (ingestion, detection, serving, the guard) share when the stack
builds them: the settings, storage and notifications they are given, and a work queue fed to a
function.
"""

from __future__ import annotations

from typing import TypedDict, Unpack

from aws_cdk import Duration, Stack
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.function import AutopilotFunction
from infra.constructs.notifications import Notifications
from infra.constructs.queues import work_queue
from infra.constructs.storage import Storage
from lambdas.common.settings import AppSettings


class AppScope(TypedDict):
    """The keyword arguments every concern is built with."""

    settings: AppSettings
    storage: Storage
    notifications: Notifications


class AppConstruct(Construct):
    """A concern of the application, built from the settings, the storage and the notifications."""

    def __init__(self, scope: Construct, construct_id: str, **app: Unpack[AppScope]) -> None:
        super().__init__(scope, construct_id)
        self.settings = app["settings"]
        self.storage = app["storage"]
        self.notifications = app["notifications"]
        self.projects = sorted(self.settings.projects)

    @property
    def stack(self) -> Stack:
        return Stack.of(self)

    def work_queue(self, *, what: str, consumer_timeout: Duration, max_receive_count: int) -> sqs.Queue:
        """The concern's encrypted queue with its dead-letter queue and alarm (`queue`, `dlq`,
        `dlq_alarm`); only unexpected errors of the consumer count towards the DLQ."""
        queues = work_queue(
            self,
            key=self.storage.key,
            consumer_timeout=consumer_timeout,
            max_receive_count=max_receive_count,
            alarm_topic=self.notifications.lifecycle_topic,
            what=what,
        )
        self.queue, self.dlq, self.dlq_alarm = queues.queue, queues.dlq, queues.dlq_alarm
        return self.queue

    def consume(self, function: AutopilotFunction, *, batch_size: int, max_concurrency: int) -> None:
        """`function` receives the queue's messages in batches and reports partial batch failures."""
        function.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=batch_size,
                max_batching_window=Duration.seconds(5),
                report_batch_item_failures=True,
                max_concurrency=max_concurrency,
            )
        )
