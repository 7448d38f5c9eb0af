"""CloudWatch dashboard and alarms for the whole stack.

Reads the other constructs from the stack through the shared attribute conventions (`.queue` /
`.queues`, `.dlq` / `.dlqs`, `.functions`, `.state_machine` / `.state_machines`, `.alarms`), so
a queue, function or state machine added to any construct is monitored without a change here.

Alarms (all notify the lifecycle topic, and the optional e-mail subscription from settings):
- every dead-letter queue with at least one visible message (unless its construct already
  alarms on it: then that alarm is shown on the dashboard instead of a duplicate);
- failed, timed-out or aborted executions of every state machine (failed trainings, failed
  model transitions);
- a model running longer than its window: the serving controller's
  ModelRunningWithoutDemandMinutes metric, per configured project;
- errors of every function.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from infra.constructs.function import METRICS_NAMESPACE
from lambdas.common.constants import (
    METRIC_DIMENSION_PROJECT,
    METRIC_IMAGE_ERRORS,
    METRIC_IMAGES_CLASSIFIED,
    METRIC_IMAGES_DEFERRED,
    METRIC_MODEL_RUNNING_MINUTES,
    METRIC_MODEL_RUNNING_UNWANTED_MINUTES,
)
from lambdas.common.settings import AppSettings

NAMESPACE = METRICS_NAMESPACE
CONCERNS = ("ingestion", "training", "serving", "detection", "guard", "storage", "notifications")
# The controller ticks every minute; a model that runs unwanted this many minutes in a row alarms.
UNWANTED_RUNNING_MINUTES = 15
INGESTION_METRICS = ("EntriesStaged", "EntriesApplied", "EntriesRejected", "UpdateDatasetEntriesCalls")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _collect(construct: Any, *names: str) -> list[Any]:
    found: list[Any] = []
    for name in names:
        found.extend(_as_list(getattr(construct, name, None)))
    return found


def _unique(items: list[Any]) -> list[Any]:
    seen: set[int] = set()
    unique = []
    for item in items:
        if id(item) not in seen:
            seen.add(id(item))
            unique.append(item)
    return unique


class Monitoring(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: AppSettings, stack: Any = None, **_: Any
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        concerns = {name: getattr(stack, name, None) for name in CONCERNS} if stack is not None else {}
        notifications = concerns.get("notifications")
        self.alarm_topic: sns.ITopic | None = getattr(notifications, "lifecycle_topic", None)
        # Alarms go to the lifecycle topic, which carries the optional e-mail subscription from
        # settings (Notifications). Without that topic, monitoring subscribes the e-mail itself.
        if self.alarm_topic is None and settings.notification_email:
            self.alarm_topic = sns.Topic(
                self, "Alarms", display_name="Custom Labels Autopilot alarms", enforce_ssl=True
            )
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(settings.notification_email))

        self.functions: list[lambda_.IFunction] = []
        self.queues: list[sqs.IQueue] = []
        self.dlqs: list[sqs.IQueue] = []
        self.state_machines: list[sfn.IStateMachine] = []
        existing_alarms: list[cloudwatch.IAlarm] = []
        for concern in concerns.values():
            if concern is None:
                continue
            for wrapper in _collect(concern, "functions"):
                function = getattr(wrapper, "function", wrapper)
                if hasattr(function, "metric_errors"):
                    self.functions.append(function)
            self.queues.extend(q for q in _collect(concern, "queue", "queues") if hasattr(q, "queue_arn"))
            self.dlqs.extend(q for q in _collect(concern, "dlq", "dlqs") if hasattr(q, "queue_arn"))
            self.state_machines.extend(
                m for m in _collect(concern, "state_machine", "state_machines") if hasattr(m, "metric_failed")
            )
            existing_alarms.extend(
                a for a in _collect(concern, "alarms", "dlq_alarm") if hasattr(a, "alarm_arn")
            )
        if stack is not None:
            self.dlqs.extend(self._dead_letter_queues_in(stack))
        self.functions = _unique(self.functions)
        self.queues = [q for q in _unique(self.queues) if q not in self.dlqs]
        self.dlqs = _unique(self.dlqs)
        self.state_machines = _unique(self.state_machines)
        existing_alarms = _unique(existing_alarms)

        self.alarms: list[cloudwatch.Alarm] = []
        alarmed_queue_names = self._queue_names_alarmed_by(existing_alarms)
        for index, dlq in enumerate(self.dlqs):
            if dlq.queue_name in alarmed_queue_names:
                continue
            self._alarm(
                f"DeadLetters{index}",
                f"Messages wait in the dead-letter queue {dlq.node.path}; inspect them and redrive",
                dlq.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic="Maximum"
                ),
                threshold=1,
            )
        for index, machine in enumerate(self.state_machines):
            metric = cloudwatch.MathExpression(
                expression="failed + timedout + aborted",
                using_metrics={
                    "failed": machine.metric_failed(period=Duration.minutes(5), statistic="Sum"),
                    "timedout": machine.metric_timed_out(period=Duration.minutes(5), statistic="Sum"),
                    "aborted": machine.metric_aborted(period=Duration.minutes(5), statistic="Sum"),
                },
                period=Duration.minutes(5),
                label="failed executions",
            )
            self._alarm(
                f"ExecutionsFailed{index}",
                f"Executions of {machine.node.path} failed, timed out or were aborted (a failed training?)",
                metric,
                threshold=1,
            )
        for project in sorted(settings.projects):
            self._alarm(
                f"ModelRunningTooLong{_safe(project)}",
                f"The model of project {project} kept running for {UNWANTED_RUNNING_MINUTES} minutes outside "
                "its idle/window policy; check the model controller and stop it (autopilot stop)",
                self._controller_metric(stack, METRIC_MODEL_RUNNING_UNWANTED_MINUTES, project, "Sum"),
                threshold=UNWANTED_RUNNING_MINUTES,
                evaluation_periods=1,
                period_minutes=UNWANTED_RUNNING_MINUTES,
            )
        for index, function in enumerate(self.functions):
            self._alarm(
                f"FunctionErrors{index}",
                f"{function.node.path} reported errors",
                function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
                threshold=1,
            )
        self.all_alarms: list[cloudwatch.IAlarm] = [*self.alarms, *existing_alarms]
        self.dashboard = self._dashboard(stack)

    # -- discovery --------------------------------------------------------------------------------
    @staticmethod
    def _dead_letter_queues_in(stack: IConstruct) -> list[sqs.IQueue]:
        """Every queue some other queue of the stack redrives to (dead-letter queues not exposed)."""
        found = []
        for node in stack.node.find_all():
            dead_letter = getattr(node, "dead_letter_queue", None)
            if isinstance(node, sqs.Queue) and dead_letter is not None:
                found.append(dead_letter.queue)
        return found

    @staticmethod
    def _queue_names_alarmed_by(alarms: list[cloudwatch.IAlarm]) -> set[str]:
        """QueueName dimensions (tokens) of the alarms the concerns already define."""
        names: set[str] = set()
        for alarm in alarms:
            metric = getattr(alarm, "metric", None)
            dimensions = getattr(metric, "dimensions", None) or {}
            if isinstance(dimensions.get("QueueName"), str):
                names.add(dimensions["QueueName"])
        return names

    def _controller_metric(self, stack: Any, name: str, project: str, statistic: str) -> cloudwatch.Metric:
        dimensions = {METRIC_DIMENSION_PROJECT: project}
        service = self._service_of(getattr(stack, "serving", None))
        if service:
            dimensions["service"] = service
        return cloudwatch.Metric(
            namespace=NAMESPACE,
            metric_name=name,
            dimensions_map=dimensions,
            statistic=statistic,
            period=Duration.minutes(5),
        )

    @staticmethod
    def _service_of(concern: Any) -> str | None:
        """POWERTOOLS_SERVICE_NAME of a concern's first function."""
        wrappers = _collect(concern, "functions")
        return str(wrappers[0].service_name) if wrappers else None

    def _alarm(
        self,
        construct_id: str,
        description: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        evaluation_periods: int = 1,
        period_minutes: int | None = None,
    ) -> cloudwatch.Alarm:
        if period_minutes is not None and isinstance(metric, cloudwatch.Metric):
            metric = metric.with_(period=Duration.minutes(period_minutes))
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if self.alarm_topic is not None:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.alarm_topic))
        self.alarms.append(alarm)
        return alarm

    # -- dashboard --------------------------------------------------------------------------------
    def _dashboard(self, stack: Any) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(24))
        ingestion_service = self._service_of(getattr(stack, "ingestion", None))
        detection_service = self._service_of(getattr(stack, "detection", None))

        def app_metric(name: str, service: str | None, label: str | None = None) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name=name,
                dimensions_map={"service": service} if service else None,
                statistic="Sum",
                period=Duration.minutes(5),
                label=label or name,
            )

        dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown="# Custom Labels Autopilot\nIngestion, training, model running time, detections.",
                width=24,
                height=2,
            )
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Ingestion: dataset entries",
                left=[app_metric(name, ingestion_service) for name in INGESTION_METRICS],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Queues: messages waiting",
                left=[
                    q.metric_approximate_number_of_messages_visible(statistic="Maximum") for q in self.queues
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Queues: oldest message age (s)",
                left=[q.metric_approximate_age_of_oldest_message(statistic="Maximum") for q in self.queues],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Workflows: executions",
                left=[
                    m.metric_succeeded(statistic="Sum", label=f"{m.node.id} succeeded")
                    for m in self.state_machines
                ],
                right=[
                    m.metric_failed(statistic="Sum", label=f"{m.node.id} failed") for m in self.state_machines
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Model running minutes (inference-unit cost driver)",
                left=[
                    self._controller_metric(stack, METRIC_MODEL_RUNNING_MINUTES, project, "Sum")
                    for project in sorted(self.settings.projects)
                ],
                right=[
                    self._controller_metric(stack, METRIC_MODEL_RUNNING_UNWANTED_MINUTES, project, "Sum")
                    for project in sorted(self.settings.projects)
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Detections",
                left=[
                    app_metric(METRIC_IMAGES_CLASSIFIED, detection_service),
                    app_metric(METRIC_IMAGES_DEFERRED, detection_service),
                ],
                right=[app_metric(METRIC_IMAGE_ERRORS, detection_service)],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Function errors",
                left=[
                    f.metric_errors(statistic="Sum", label=f.node.path.split("/")[-2]) for f in self.functions
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Dead-letter queues",
                left=[
                    q.metric_approximate_number_of_messages_visible(statistic="Maximum") for q in self.dlqs
                ],
                width=12,
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.all_alarms, width=12),
        )
        return dashboard


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)
