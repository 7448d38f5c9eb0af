"""Event-based detection: S3 `<project>/inference/` notifications -> SQS (KMS, DLQ) -> Lambda.

The handler classifies with the production version, publishes results on the detections topic and
writes them under `<project>/results/`. Images that arrive while the model is stopped go back to
the queue with a delay (no receive count spent) and ask the model controller for a start.
"""

from __future__ import annotations

from typing import Unpack

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.app import AppConstruct, AppScope
from infra.constructs.nag import acknowledge_bucket_notifications_handler, acknowledge_iam5
from infra.constructs.notifications import Notifications
from infra.constructs.queues import ScopedQueueDestination
from infra.constructs.rekognition_s3 import grant_detection_images_read
from infra.constructs.serving import Serving
from infra.constructs.storage import Storage
from lambdas.common.config import ControllerEnvironment, DetectionEnvironment
from lambdas.common.constants import (
    FEATURE_CONTENT_MODERATION,
    FEATURE_CUSTOM_LABELS,
    INFERENCE_FOLDER,
    RESULTS_FOLDER,
    REVIEW_FOLDER,
    SERVICE_DETECTION,
)
from lambdas.common.settings import AppSettings

HANDLER_TIMEOUT = Duration.seconds(60)
MAX_RECEIVE_COUNT = 5
# Rekognition serves about 5 TPS per inference unit; a few concurrent batches keep a model busy
# without turning every burst into throttling.
MAX_CONCURRENCY = 5


class Detection(AppConstruct):
    def __init__(
        self, scope: Construct, construct_id: str, *, serving: Serving, **app: Unpack[AppScope]
    ) -> None:
        super().__init__(scope, construct_id, **app)
        settings, storage, notifications, stack = self.settings, self.storage, self.notifications, self.stack

        self.work_queue(
            what="Detection messages", consumer_timeout=HANDLER_TIMEOUT, max_receive_count=MAX_RECEIVE_COUNT
        )

        destination = ScopedQueueDestination(self.queue, storage.key)
        for project in self.projects:
            storage.bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                destination,
                s3.NotificationKeyFilter(prefix=f"{project}/{INFERENCE_FOLDER}/"),
            )

        acknowledge_bucket_notifications_handler(stack)

        self.handler = self.function(
            "Handler",
            DetectionEnvironment,
            {
                "detections_topic": notifications.detections_topic.topic_arn,
                "queue_url": self.queue.queue_url,
                "event_bus": "default",
            },
            handler="lambdas.detection.handler.handle",
            service_name=SERVICE_DETECTION,
            description="event-based detection of images under <project>/inference/",
            timeout=HANDLER_TIMEOUT,
            memory_size=512,
        )
        self.consume(self.handler, batch_size=10, max_concurrency=MAX_CONCURRENCY)
        self._grant(settings, storage, notifications, stack)

        # The controller measures the backlog on this queue.
        serving.controller.function.add_environment(
            ControllerEnvironment.variable("detection_queue_url"), self.queue.queue_url
        )
        self.queue.grant(serving.controller.role, "sqs:GetQueueAttributes")

    def _grant(
        self, settings: AppSettings, storage: Storage, notifications: Notifications, stack: Stack
    ) -> None:
        role = self.handler.role
        projects = sorted(settings.projects)
        # Rekognition reads the image with the caller's permissions; copying a tagged image (and
        # its version) to <project>/review/ also reads its tags.
        grant_detection_images_read(
            role,
            storage.bucket,
            projects,
            extra_actions=("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
        )
        for project in projects:
            storage.bucket.grant_put(role, f"{project}/{RESULTS_FOLDER}/*")
            storage.bucket.grant_put(role, f"{project}/{REVIEW_FOLDER}/*")
        storage.state_table.grant(role, "dynamodb:GetItem", "dynamodb:UpdateItem")
        storage.idempotency_table.grant_read_write_data(role)
        storage.settings_parameter.grant_read(role)
        notifications.detections_topic.grant_publish(role)
        self.queue.grant_send_messages(role)
        self.allow(
            role,
            ["events:PutEvents"],
            [stack.format_arn(service="events", resource="event-bus", resource_name="default")],
        )
        custom = [name for name in projects if settings.projects[name].feature == FEATURE_CUSTOM_LABELS]
        if custom:
            self.allow(role, ["rekognition:DetectCustomLabels"], self.rekognition_arns(custom, "version/*"))
        if any(settings.projects[name].feature == FEATURE_CONTENT_MODERATION for name in projects):
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["rekognition:DetectModerationLabels"], resources=["*"])
            )
        flow_definitions = human_review_flow_definitions(settings)
        if flow_definitions:
            # DetectModerationLabels with HumanLoopConfig starts the A2I loop as the caller; the
            # Service Authorization Reference authorizes sagemaker:StartHumanLoop on the
            # flow-definition resource type, so the grant names the configured flow definitions only.
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["sagemaker:StartHumanLoop"], resources=flow_definitions)
            )

        findings = {
            "Resource::*": (
                "rekognition:DetectModerationLabels also authorizes the AWS base moderation model, which has "
                "no ARN; X-Ray trace segments accept only '*'."
            ),
            "Action::kms:GenerateDataKey*": "Publishing to the detections topic and re-queueing to the "
            "detection queue, both encrypted with the one stack key.",
            "Action::kms:ReEncrypt*": "Granted by the SQS send grant on the queue's own key only.",
            "Action::s3:Abort*": "Multipart clean-up for result and review writes under scoped prefixes.",
        }
        for project in projects:
            for folder in (INFERENCE_FOLDER, RESULTS_FOLDER, REVIEW_FOLDER):
                findings[f"Resource::<{_logical_id(storage.bucket)}.Arn>/{project}/{folder}/*"] = (
                    f"Objects under {project}/{folder}/ only: images read, results and review copies written."
                )
            findings[
                f"Resource::arn:<AWS::Partition>:rekognition:<AWS::Region>:<AWS::AccountId>:project/{project}/version/*"
            ] = "Version ARNs end in a name and timestamp only known after training; scoped to one project."
        findings[f"Resource::<{_logical_id(storage.idempotency_table)}.Arn>/index/*"] = (
            "Index access that comes with the idempotency table grant (the table has no index)."
        )
        acknowledge_iam5(self.handler, findings)


def human_review_flow_definitions(settings: AppSettings) -> list[str]:
    """The flow definition ARNs of the projects that ask for human review (sorted, no repeats)."""
    return sorted(
        {
            arn
            for project in settings.projects.values()
            if (arn := project.human_loop_flow_definition_arn) is not None
        }
    )


def _logical_id(construct: Construct) -> str:
    child = construct.node.default_child
    return Stack.of(construct).get_logical_id(child)  # type: ignore[arg-type]
