"""The data bucket, the state and idempotency tables, the settings parameter and the KMS key."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from lambdas.common.constants import (
    FEATURE_CONTENT_MODERATION,
    STATE_PK,
    STATE_SK,
    STATE_TTL_ATTRIBUTE,
    TRAINING_OUTPUT_FOLDER,
)
from lambdas.common.settings import AppSettings


def cloudwatch_alarm_conditions(stack: Stack) -> dict[str, Any]:
    """Conditions that limit the CloudWatch service principal to the alarms of the stack's account."""
    return {
        "StringEquals": {"aws:SourceAccount": stack.account},
        "ArnLike": {
            "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
        },
    }


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: AppSettings) -> None:
        super().__init__(scope, construct_id)

        # One customer-managed key for topics and queues: SNS and SQS encryption that S3,
        # EventBridge and CloudWatch alarms can still publish to.
        self.key = kms.Key(
            self,
            "Key",
            enable_key_rotation=True,
            description="Encrypts the autopilot topics, queues and tables",
            removal_policy=RemovalPolicy.DESTROY,
        )
        self._grant_service_senders(self.key)

        self.access_logs = self._private_bucket(
            "AccessLogs",
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
        )

        # Images, manifests, results and training output. SSE-S3 so that Rekognition, which
        # reads images with the caller's credentials, needs no KMS grant.
        self.bucket = self._private_bucket(
            "Data",
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="data/",
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30))],
            cors=_human_review_cors(settings),
        )
        self._grant_rekognition_service(self.bucket)
        self._grant_adapter_auto_update(self.bucket, settings)

        self.state_table = self._table(
            "State",
            partition_key=_string_key(STATE_PK),
            sort_key=_string_key(STATE_SK),
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Powertools idempotency records: key "id", TTL "expiration".
        self.idempotency_table = self._table(
            "Idempotency",
            partition_key=_string_key("id"),
            time_to_live_attribute="expiration",
            removal_policy=RemovalPolicy.DESTROY,
        )
        _ = STATE_TTL_ATTRIBUTE  # state items do not expire; the name is reserved for callers

        self.settings_parameter = ssm.StringParameter(
            self,
            "Settings",
            description="Custom Labels Autopilot settings (cdk.json context, merged per project)",
            string_value=settings.to_json(),
            tier=ssm.ParameterTier.STANDARD if len(settings.to_json()) < 4000 else ssm.ParameterTier.ADVANCED,
        )

    def _table(self, construct_id: str, **options: Any) -> dynamodb.TableV2:
        """A table of the stack: on demand, point-in-time recovery, encrypted with an AWS key."""
        return dynamodb.TableV2(
            self,
            construct_id,
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
            **options,
        )

    def _private_bucket(self, construct_id: str, **options: Any) -> s3.Bucket:
        """A bucket of the stack: no public access, SSE-S3, TLS only, kept when the stack goes."""
        return s3.Bucket(
            self,
            construct_id,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            removal_policy=RemovalPolicy.RETAIN,
            **options,
        )

    def _grant_service_senders(self, key: kms.Key) -> None:
        """Key use for the services that send into the stack's encrypted topics and queues.

        - CloudWatch publishes alarm notifications to the lifecycle topic: scoped to this account
          and its alarms (aws:SourceAccount, aws:SourceArn), as the CloudWatch and SNS guides show.
        - S3 sends object notifications to the ingestion and detection queues: the statement comes
          with each queue's notifications (queues.ScopedQueueDestination), scoped to the data
          bucket (aws:SourceArn) and this account (aws:SourceAccount).
        - EventBridge sends undeliverable events to the rule dead-letter queues. The EventBridge
          guide's key statement for an encrypted dead-letter queue carries no condition, and no
          page we found says EventBridge passes aws:SourceArn / aws:SourceAccount to KMS for it;
          a condition it does not meet would drop dead letters without a trace. So the statement
          stays unconditioned, limited to the two actions (see docs/architecture.md).
        """
        stack = Stack.of(self)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsUseKey",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions=cloudwatch_alarm_conditions(stack),
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeDeadLettersUseKey",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )

    def _grant_rekognition_service(self, bucket: s3.Bucket) -> None:
        """Bucket policy the rekognition service principal needs for datasets and training output."""
        self._allow_rekognition(
            bucket,
            "RekognitionBucketAccess",
            ["s3:GetBucketAcl", "s3:GetBucketLocation"],
            [bucket.bucket_arn],
        )
        self._allow_rekognition(
            bucket,
            "RekognitionReadImages",
            ["s3:GetObject", "s3:GetObjectAcl", "s3:GetObjectVersion", "s3:GetObjectTagging"],
            [bucket.arn_for_objects("*")],
        )
        self._allow_rekognition(
            bucket,
            "RekognitionWriteTrainingOutput",
            ["s3:PutObject"],
            [bucket.arn_for_objects("*/training-output/*")],
            {"s3:x-amz-acl": "bucket-owner-full-control"},
        )

    def _allow_rekognition(
        self,
        bucket: s3.Bucket,
        sid: str,
        actions: list[str],
        resources: list[str],
        string_equals: dict[str, str] | None = None,
    ) -> None:
        """One bucket-policy statement for the rekognition service principal, limited to this
        stack's account (aws:SourceAccount) and to `string_equals` when given."""
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid=sid,
                principals=[iam.ServicePrincipal("rekognition.amazonaws.com")],
                actions=actions,
                resources=resources,
                conditions={
                    "StringEquals": {"aws:SourceAccount": Stack.of(self).account, **(string_equals or {})}
                },
            )
        )

    def _grant_adapter_auto_update(self, bucket: s3.Bucket, settings: AppSettings) -> None:
        """What Rekognition needs to retrain AutoUpdate adapters on its own (Rekognition Developer Guide,
        "Setting up AutoUpdate permissions", using-adapters-autoupdate): the service principal may list
        the bucket, read the project's training data and write the retraining output.

        The guide's statement (Sid AllowRekognitionAutoUpdateActions) also names s3:HeadObject and
        s3:HeadBucket, which are not IAM actions (S3 authorizes HeadObject with s3:GetObject and
        HeadBucket with s3:ListBucket; Service Authorization Reference) and which a bucket policy
        refuses as invalid; the resources are narrowed from the whole bucket to the projects with
        AutoUpdate: their prefix for reads, their training-output folder for writes.
        """
        projects = sorted(
            name
            for name, project in settings.projects.items()
            if project.feature == FEATURE_CONTENT_MODERATION and project.auto_update
        )
        if not projects:
            return
        self._allow_rekognition(
            bucket, "AllowRekognitionAutoUpdateActions", ["s3:ListBucket"], [bucket.bucket_arn]
        )
        self._allow_rekognition(
            bucket,
            "AllowRekognitionAutoUpdateReads",
            ["s3:GetObject", "s3:GetObjectVersion"],
            [bucket.arn_for_objects(f"{project}/*") for project in projects],
        )
        self._allow_rekognition(
            bucket,
            "AllowRekognitionAutoUpdateOutput",
            ["s3:PutObject"],
            [bucket.arn_for_objects(f"{project}/{TRAINING_OUTPUT_FOLDER}/*") for project in projects],
        )


def _string_key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


def _human_review_cors(settings: AppSettings) -> list[s3.CorsRule] | None:
    """A2I shows the reviewers the images of a human loop from this bucket, and its guide requires a
    CORS rule on the buckets holding the input images ("CORS Permission Requirement", Amazon
    Augmented AI: GET from any origin). CORS grants no access (the worker UI reads through signed
    URLs), so the rule is only added when some project configures a flow definition."""
    if not any(project.human_loop_flow_definition_arn for project in settings.projects.values()):
        return None
    return [s3.CorsRule(allowed_methods=[s3.HttpMethods.GET], allowed_origins=["*"])]
