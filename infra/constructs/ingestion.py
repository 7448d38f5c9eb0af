"""Labeling ingestion: S3 uploads under <project>/(train|test|manifests)/ -> SQS -> Lambda -> datasets.

- One S3 notification per configured project and ingestion folder, all to one encrypted queue.
- The queue has a dead-letter queue whose depth raises an alarm on the lifecycle topic.
- The function (lambdas.ingestion.handler.handle) stages validated lines and applies them per
  dataset under a DynamoDB lease; it sends its own delayed "flush" requests to the same queue.
- IAM is scoped to the configured projects: S3 prefixes, DynamoDB leading keys, Rekognition ARNs.
- Service errors (throttling, failed dataset updates) are waited out for `retry_hours`; after that
  the staged lines stay staged and the function's DatasetUpdatesStalled metric raises an alarm on
  the lifecycle topic.

Optional cdk.json context "ingestion": {"flush_delay_seconds": 20, "batch_size": 100,
"max_concurrency": 10, "retry_hours": 24}.
"""

from __future__ import annotations

from typing import Any, Unpack

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.alarms import notifying_alarm
from infra.constructs.app import AppConstruct, AppScope
from infra.constructs.nag import acknowledge_bucket_notifications_handler, iam5
from infra.constructs.notifications import Notifications
from infra.constructs.queues import ScopedQueueDestination
from infra.constructs.rekognition_s3 import adapter_projects, grant_dataset_images_read
from infra.constructs.storage import Storage
from lambdas.common.config import IngestionEnvironment
from lambdas.common.constants import (
    ADAPTER_MANIFESTS_FOLDER,
    INGESTION_FOLDERS,
    METRIC_INGESTION_STALLED,
    PROJECT_PK_PREFIX,
    SERVICE_INGESTION,
)
from lambdas.common.settings import AppSettings

FUNCTION_TIMEOUT = Duration.minutes(5)
MAX_RECEIVE_COUNT = 5
DEFAULTS: dict[str, Any] = {
    "flush_delay_seconds": 20,
    "batch_size": 100,
    "max_concurrency": 10,
    "retry_hours": 24,
}


class Ingestion(AppConstruct):
    def __init__(self, scope: Construct, construct_id: str, **app: Unpack[AppScope]) -> None:
        super().__init__(scope, construct_id, **app)
        settings, storage, notifications = self.settings, self.storage, self.notifications
        options = {**DEFAULTS, **(self.node.try_get_context("ingestion") or {})}

        # Only unexpected errors count towards the DLQ: busy datasets are retried by new delayed
        # messages, never by failing the old ones.
        self.work_queue(
            what="Ingestion messages", consumer_timeout=FUNCTION_TIMEOUT, max_receive_count=MAX_RECEIVE_COUNT
        )

        self.handler = self.function(
            "Handler",
            IngestionEnvironment,
            {
                "queue_url": self.queue.queue_url,
                "flush_delay_seconds": int(options["flush_delay_seconds"]),
                "dataset_poll_seconds": 5,
                "retry_hours": float(options["retry_hours"]),
            },
            handler="lambdas.ingestion.handler.handle",
            service_name=SERVICE_INGESTION,
            description="labeling ingestion: S3 uploads to Rekognition Custom Labels dataset entries",
            timeout=FUNCTION_TIMEOUT,
            memory_size=512,
        )
        self.consume(
            self.handler,
            batch_size=int(options["batch_size"]),
            max_concurrency=int(options["max_concurrency"]),
        )

        destination = ScopedQueueDestination(self.queue, storage.key)
        for project in self.projects:
            for folder in INGESTION_FOLDERS:
                storage.bucket.add_event_notification(
                    s3.EventType.OBJECT_CREATED,
                    destination,
                    s3.NotificationKeyFilter(prefix=f"{project}/{folder}/"),
                )

        self._grant(settings, storage, notifications)

        # Staged lines kept after service errors lasted longer than retry_hours: someone must look.
        self.stalled_alarm = notifying_alarm(
            self,
            "UpdatesStalledAlarm",
            description=(
                f"Dataset updates failed with service errors for more than {options['retry_hours']} hours; "
                "the staged lines are kept and applied by the next upload to the dataset"
            ),
            metric=self.handler.metric(METRIC_INGESTION_STALLED, statistic="Sum", period=Duration.minutes(5)),
            topic=notifications.lifecycle_topic,
        )
        self.alarms = [self.dlq_alarm, self.stalled_alarm]
        self._acknowledge(settings, storage)

    def _grant(self, settings: AppSettings, storage: Storage, notifications: Notifications) -> None:
        role = self.handler.role
        stack = Stack.of(self)
        projects = sorted(settings.projects)
        # Reads uploads (images, manifests); UpdateDatasetEntries reads the project's images with
        # this role's permissions: the guide's S3 read actions on the bucket and project prefixes.
        grant_dataset_images_read(role, storage.bucket, projects)
        # Delayed flush requests to its own queue, and lifecycle events; both encrypted with the key.
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.queue.queue_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[notifications.lifecycle_topic.topic_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[storage.key.key_arn]
            )
        )
        storage.settings_parameter.grant_read(role)
        # CONTENT_MODERATION projects: the flush writes new versions of the adapter manifests.
        adapters = adapter_projects(settings)
        if adapters:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="AdapterManifestsWrite",
                    actions=["s3:PutObject"],
                    resources=[
                        storage.bucket.arn_for_objects(f"{p}/{ADAPTER_MANIFESTS_FOLDER}/*") for p in adapters
                    ],
                )
            )
        # State table, only under the configured projects' keys: staged lines (BatchWriteItem puts
        # and deletes, Query), dataset leases (conditional PutItem / DeleteItem), ordering tokens of
        # applied lines (BatchGetItem, BatchWriteItem), the service-error streak and the project's
        # task type (GetItem, PutItem, DeleteItem).
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "dynamodb:BatchGetItem",
                    "dynamodb:GetItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:PutItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:Query",
                ],
                resources=[storage.state_table.table_arn],
                conditions={
                    "ForAllValues:StringEquals": {
                        "dynamodb:LeadingKeys": [f"{PROJECT_PK_PREFIX}{p}" for p in projects]
                    }
                },
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
                resources=[storage.idempotency_table.table_arn],
            )
        )
        # Rekognition: DescribeProjects and CreateProject have no resource-level permission (the
        # Service Authorization Reference lists no resource type: the policy must say "*"); the
        # rest is per project.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["rekognition:CreateProject", "rekognition:DescribeProjects"], resources=["*"]
            )
        )
        project_arns = [
            stack.format_arn(service="rekognition", resource="project", resource_name=f"{p}/*")
            for p in projects
        ]
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "rekognition:CreateDataset",
                    "rekognition:DeleteDataset",  # only a dataset that CREATE_FAILED with SERVICE_ERROR
                    "rekognition:DescribeDataset",
                    "rekognition:UpdateDatasetEntries",
                    "rekognition:ListDatasetEntries",
                ],
                resources=project_arns,
            )
        )

    def _acknowledge(self, settings: AppSettings, storage: Storage) -> None:
        """Every finding below is checked by name: a new wildcard fails synth until reasoned about."""
        stack = Stack.of(self)
        bucket_id = stack.resolve(stack.get_logical_id(storage.bucket.node.default_child))  # type: ignore[arg-type]
        rules: list[Acknowledgment] = []
        for project in sorted(settings.projects):
            rules.append(
                iam5(
                    f"Resource::<{bucket_id}.Arn>/{project}/*",
                    f"Reads the uploads of project {project} (any object below its prefix); "
                    "Rekognition also reads the dataset images with this role's permissions.",
                )
            )
            if project in adapter_projects(settings):
                rules.append(
                    iam5(
                        f"Resource::<{bucket_id}.Arn>/{project}/{ADAPTER_MANIFESTS_FOLDER}/*",
                        f"Writes the adapter manifests of project {project} (train and test), nothing else.",
                    )
                )
            rules.append(
                iam5(
                    f"Resource::arn:<AWS::Partition>:rekognition:<AWS::Region>:<AWS::AccountId>:project/{project}/*",
                    f"Project {project} and its datasets: the ARNs end in creation timestamps "
                    "(project/<name>/<ts>, project/<name>/dataset/<type>/<ts>) unknown before creation.",
                )
            )
        rules.append(
            iam5(
                "Resource::*",
                "Only actions without resource-level permissions use *: rekognition:CreateProject, "
                "rekognition:DescribeProjects, "
                "and xray:PutTraceSegments/PutTelemetryRecords for active tracing.",
            )
        )
        Validations.of(self.handler).acknowledge(*rules)
        acknowledge_bucket_notifications_handler(Stack.of(self))
