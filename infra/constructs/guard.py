"""The account guard: a scheduled sweep of every Rekognition project of the account and region for
models that run without the controller managing them, and the daily inference-unit budgets.

    EventBridge Scheduler rate(guard.rate_minutes) -> guard Lambda -> lifecycle topic
                                                                   -> UnmanagedModelsRunning metric -> alarm

Permissions: rekognition:DescribeProjects has no resource-level permission (Service Authorization
Reference, Amazon Rekognition), so it is granted on "*"; DescribeProjectVersions is granted on the
"project" resource type of this account and region (every project, which is the point of the
sweep); StopProjectVersion only on the versions of the projects listed in
guard.stop_allowed_projects and of the configured projects with a max_iu_hours_per_day budget.
"""

from __future__ import annotations

from typing import Unpack

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from constructs import Construct

from infra.constructs.alarms import notifying_alarm
from infra.constructs.app import AppConstruct, AppScope
from infra.constructs.detection import Detection
from infra.constructs.nag import acknowledge_iam5
from lambdas.common.config import GuardEnvironment
from lambdas.common.constants import (
    METRIC_UNMANAGED_MODELS_RUNNING,
    SERVICE_GUARD,
)
from lambdas.common.settings import AppSettings


def stoppable_projects(settings: AppSettings) -> list[str]:
    """Projects whose versions the guard may stop: the allow-list and the budgeted projects."""
    budgeted = [name for name, p in settings.projects.items() if p.max_iu_hours_per_day is not None]
    return sorted({*settings.guard.stop_allowed_projects, *budgeted})


class Guard(AppConstruct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        detection: Detection | None = None,
        **app: Unpack[AppScope],
    ) -> None:
        super().__init__(scope, construct_id, **app)
        settings, storage, stack = self.settings, self.storage, self.stack
        topic = self.notifications.lifecycle_topic
        self.sweeper = self.function(
            "Sweep",
            GuardEnvironment,
            {"detection_queue_url": detection.queue.queue_url if detection is not None else None},
            handler="lambdas.guard.handler.handle",
            service_name=SERVICE_GUARD,
            description="the account guard: finds and stops models nobody manages",
            timeout=Duration.minutes(5),
            memory_size=256,
            reserved_concurrent_executions=1,  # one sweep at a time owns the guard's memory item
        )
        role = self.sweeper.role
        storage.state_table.grant_read_write_data(role)
        storage.settings_parameter.grant_read(role)
        topic.grant_publish(role)
        if detection is not None:
            detection.queue.grant(role, "sqs:GetQueueAttributes")
        # DescribeProjects supports no resource-level permissions.
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["rekognition:DescribeProjects"], resources=["*"])
        )
        self.allow(
            role,
            ["rekognition:DescribeProjectVersions"],
            [stack.format_arn(service="rekognition", resource="project", resource_name="*")],
        )
        self.stoppable = stoppable_projects(settings)
        if self.stoppable:
            versions = self.rekognition_arns(self.stoppable, "version/*")
            self.allow(role, ["rekognition:StopProjectVersion"], versions)
        nag_arn = "arn:<AWS::Partition>:rekognition:<AWS::Region>:<AWS::AccountId>:project"
        stop_reason = (
            "StopProjectVersion on the versions of one project the settings allow the guard to stop "
            "(version ARNs end in names and timestamps chosen at run time)."
        )
        acknowledge_iam5(
            role,
            {
                "Resource::*": "rekognition:DescribeProjects has no resource-level permissions; X-Ray trace "
                "segments accept only '*'.",
                f"Resource::{nag_arn}/*": "the guard reads the versions of every project of the account and "
                "region (DescribeProjectVersions on the project resource type); it may not stop them.",
                **{f"Resource::{nag_arn}/{name}/version/*": stop_reason for name in self.stoppable},
                "Action::kms:GenerateDataKey*": "SNS publish to the topic encrypted with the stack key; the "
                "grant is limited to that one key.",
            },
        )

        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
            description="Lets EventBridge Scheduler invoke only the account guard",
        )
        function_id = stack.get_logical_id(self.sweeper.function.node.default_child)  # type: ignore[arg-type]
        acknowledge_iam5(
            self.scheduler_role,
            {
                f"Resource::<{function_id}.Arn>:*": "Scheduler's Lambda target grants invoke on the guard "
                "function and its versions; no other function is reachable."
            },
        )
        rate = Duration.minutes(settings.guard.rate_minutes)
        self.schedule = scheduler.Schedule(
            self,
            "Sweep-schedule",
            description="Account guard sweep: models running unmanaged, daily inference-unit budgets",
            schedule=scheduler.ScheduleExpression.rate(rate),
            target=scheduler_targets.LambdaInvoke(
                self.sweeper.function,
                input=scheduler.ScheduleTargetInput.from_object({"trigger": "schedule"}),
                role=self.scheduler_role,
                retry_attempts=0,
                max_event_age=rate,
            ),
        )
        self.schedules = [self.schedule]

        self.alarm = notifying_alarm(
            self,
            "UnmanagedModelRunning",
            description="A Rekognition model runs that the controller does not manage (see the "
            "guard.unmanaged_running event); stop it or add its project to the configuration",
            metric=self.sweeper.metric(
                METRIC_UNMANAGED_MODELS_RUNNING,
                statistic="Maximum",
                period=rate if settings.guard.rate_minutes <= 60 else Duration.hours(1),
            ),
            topic=topic,
        )
        self.alarms = [self.alarm]
