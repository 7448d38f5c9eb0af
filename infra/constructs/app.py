"""What the application's concerns (ingestion, training, detection, serving, the guard) share when
the stack builds them: the settings, storage and notifications they are given, their functions
(each with the environment its handler validates), a work queue fed to a function, and rules that
invoke a function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TypedDict, Unpack

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.function import AutopilotFunction, FunctionOptions
from infra.constructs.notifications import Notifications
from infra.constructs.queues import work_queue
from infra.constructs.storage import Storage
from lambdas.common.config import FunctionEnvironment
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
        self.functions: list[AutopilotFunction] = []

    @property
    def stack(self) -> Stack:
        return Stack.of(self)

    def rekognition_arns(self, names: Iterable[str], within: str = "*") -> list[str]:
        """The Rekognition ARNs `project/<name>/<within>` of the named projects ("version/*": their
        versions; "*": the project, its datasets and versions)."""
        return [
            self.stack.format_arn(service="rekognition", resource="project", resource_name=f"{name}/{within}")
            for name in names
        ]

    @staticmethod
    def allow(role: iam.IRole, actions: Sequence[str], resources: Sequence[str]) -> None:
        """One statement of `role`'s policy: `actions` on `resources`."""
        role.add_to_principal_policy(iam.PolicyStatement(actions=list(actions), resources=list(resources)))

    def shared_variables(self) -> dict[str, str]:
        """The shared resources by the field names the environment models give them."""
        topic_arn = self.notifications.lifecycle_topic.topic_arn
        return {
            "bucket": self.storage.bucket.bucket_name,
            "state_table": self.storage.state_table.table_name,
            "idempotency_table": self.storage.idempotency_table.table_name,
            "settings_parameter": self.storage.settings_parameter.parameter_name,
            "lifecycle_topic": topic_arn,
            "lifecycle_topic_arn": topic_arn,
        }

    def function(
        self,
        construct_id: str,
        environment: type[FunctionEnvironment],
        variables: Mapping[str, object] | None = None,
        **options: Unpack[FunctionOptions],
    ) -> AutopilotFunction:
        """One of the concern's functions (kept in `functions`). Its environment is built from the
        model its handler validates it with: each shared resource the model has a field for, and
        `variables` for the rest."""
        values: dict[str, object] = {
            name: value for name, value in self.shared_variables().items() if name in environment.model_fields
        }
        values.update(variables or {})
        function = AutopilotFunction(
            self, construct_id, environment=environment.variables(**values), **options
        )
        self.functions.append(function)
        return function

    def invoke_on(
        self,
        construct_id: str,
        function: AutopilotFunction,
        *,
        description: str,
        pattern: events.EventPattern,
        dead_letter_queue: sqs.IQueue,
        retry_attempts: int,
        max_event_age: Duration,
    ) -> events.Rule:
        """A rule that invokes `function` with the events matching `pattern`; what EventBridge cannot
        deliver after its retries goes to `dead_letter_queue`."""
        return events.Rule(
            self,
            construct_id,
            description=description,
            event_pattern=pattern,
            targets=[
                events_targets.LambdaFunction(
                    function.function,
                    dead_letter_queue=dead_letter_queue,
                    retry_attempts=retry_attempts,
                    max_event_age=max_event_age,
                )
            ],
        )

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
