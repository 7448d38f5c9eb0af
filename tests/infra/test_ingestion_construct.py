"""The ingestion construct in a stack of its own (storage + notifications + ingestion), synthesized
once with cdk-nag AwsSolutions: a finding without a reasoned acknowledgment fails the synth."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from infra.constructs.ingestion import MAX_RECEIVE_COUNT, Ingestion
from infra.constructs.notifications import Notifications
from infra.constructs.storage import Storage
from lambdas.common.constants import (
    ENV_BUCKET,
    ENV_IDEMPOTENCY_TABLE,
    ENV_INGESTION_FLUSH_DELAY,
    ENV_INGESTION_QUEUE_URL,
    ENV_INGESTION_RETRY_HOURS,
    ENV_LIFECYCLE_TOPIC,
    ENV_SETTINGS_PARAMETER,
    ENV_STATE_TABLE,
    INGESTION_FOLDERS,
    METRIC_INGESTION_STALLED,
)
from lambdas.common.settings import AppSettings, ProjectSettings

pytestmark = pytest.mark.xdist_group("synth")

SETTINGS = AppSettings(
    projects={"digits": ProjectSettings(), "moderation": ProjectSettings(feature="CONTENT_MODERATION")}
)


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, Ingestion, Stack]:
    app = App(outdir=str(tmp_path_factory.mktemp("ingestion-cdk-out")))
    stack = Stack(app, "IngestionOnly")
    storage = Storage(stack, "Storage", settings=SETTINGS)
    notifications = Notifications(stack, "Notifications", settings=SETTINGS, key=storage.key)
    ingestion = Ingestion(stack, "Ingestion", settings=SETTINGS, storage=storage, notifications=notifications)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    app.synth()  # raises ValidationFailed on any unacknowledged finding
    return Template.from_stack(stack), ingestion, stack


def ref(stack: Stack, construct: Any) -> dict[str, str]:
    return {"Ref": stack.resolve(stack.get_logical_id(construct.node.default_child))}


def logical_id(stack: Stack, construct: Any) -> str:
    return str(stack.resolve(stack.get_logical_id(construct.node.default_child)))


def test_exposes_the_attributes_the_other_constructs_rely_on(synthesized) -> None:
    _, ingestion, _ = synthesized
    assert ingestion.queue is not None and ingestion.dlq is not None
    assert [f.function for f in ingestion.functions] == [ingestion.handler.function]


def test_queue_is_encrypted_with_the_stack_key_and_dead_letters_after_retries(synthesized) -> None:
    template, ingestion, stack = synthesized
    key_arn = {"Fn::GetAtt": [Match.string_like_regexp("StorageKey"), "Arn"]}
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "KmsMasterKeyId": key_arn,
            "VisibilityTimeout": 1800,
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": [logical_id(stack, ingestion.dlq), "Arn"]},
                "maxReceiveCount": MAX_RECEIVE_COUNT,
            },
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue", {"KmsMasterKeyId": key_arn, "MessageRetentionPeriod": 14 * 24 * 3600}
    )


def test_queue_policy_lets_only_the_bucket_send_and_requires_tls(synthesized) -> None:
    template, _, _ = synthesized
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        ),
                        Match.object_like(
                            {
                                "Action": Match.array_with(["sqs:SendMessage"]),
                                "Principal": {"Service": "s3.amazonaws.com"},
                                "Condition": {"ArnLike": {"aws:SourceArn": Match.any_value()}},
                            }
                        ),
                    ]
                )
            }
        },
    )


def test_one_notification_per_project_and_ingestion_folder(synthesized) -> None:
    template, _, _ = synthesized
    notifications = template.find_resources("Custom::S3BucketNotifications")
    (resource,) = notifications.values()
    configurations = resource["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    prefixes = sorted(c["Filter"]["Key"]["FilterRules"][0]["Value"] for c in configurations)
    assert prefixes == sorted(f"{p}/{f}/" for p in SETTINGS.projects for f in INGESTION_FOLDERS)
    assert {tuple(c["Events"]) for c in configurations} == {("s3:ObjectCreated:*",)}


def test_event_source_reports_partial_batch_failures(synthesized) -> None:
    template, _, _ = synthesized
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": 100,
            "MaximumBatchingWindowInSeconds": 5,
            "ScalingConfig": {"MaximumConcurrency": 10},
        },
    )


def test_function_environment_names_every_resource(synthesized) -> None:
    template, _, _ = synthesized
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "lambdas.ingestion.handler.handle",
            "Timeout": 300,
            "Environment": {
                "Variables": Match.object_like(
                    {
                        ENV_BUCKET: Match.any_value(),
                        ENV_LIFECYCLE_TOPIC: Match.any_value(),
                        ENV_STATE_TABLE: Match.any_value(),
                        ENV_IDEMPOTENCY_TABLE: Match.any_value(),
                        ENV_SETTINGS_PARAMETER: Match.any_value(),
                        ENV_INGESTION_QUEUE_URL: Match.any_value(),
                        ENV_INGESTION_FLUSH_DELAY: "20",
                        ENV_INGESTION_RETRY_HOURS: "24.0",
                    }
                )
            },
        },
    )


def test_dead_letter_alarm_notifies_the_lifecycle_topic(synthesized) -> None:
    template, ingestion, stack = synthesized
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [
                {
                    "Name": "QueueName",
                    "Value": {"Fn::GetAtt": [logical_id(stack, ingestion.dlq), "QueueName"]},
                }
            ],
            "Threshold": 1,
            "AlarmActions": [{"Ref": Match.string_like_regexp("NotificationsLifecycle")}],
        },
    )


def test_stalled_dataset_updates_alarm_on_the_lifecycle_topic(synthesized) -> None:
    template, ingestion, _ = synthesized
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": METRIC_INGESTION_STALLED,
            "Namespace": "CustomLabelsAutopilot",
            "Dimensions": [{"Name": "service", "Value": ingestion.handler.node.id}],
            "Statistic": "Sum",
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "AlarmActions": [{"Ref": Match.string_like_regexp("NotificationsLifecycle")}],
        },
    )
    assert ingestion.stalled_alarm in ingestion.alarms


def test_role_is_scoped_to_the_configured_projects(synthesized) -> None:
    template, ingestion, stack = synthesized
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [ref(stack, ingestion.handler.role)]}}
    )
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    dynamo = next(s for s in statements if "dynamodb:Query" in s["Action"])
    # The staging store writes and deletes staged items with BatchWriteItem.
    assert {"dynamodb:BatchWriteItem", "dynamodb:PutItem"} <= set(dynamo["Action"])
    assert "dynamodb:UpdateItem" not in dynamo["Action"]
    # Ordering tokens, the service-error streak and the task type are read by key.
    assert {"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:DeleteItem"} <= set(dynamo["Action"])
    assert dynamo["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"] == [
        "PROJECT#digits",
        "PROJECT#moderation",
    ]
    rekognition = next(s for s in statements if "rekognition:UpdateDatasetEntries" in s["Action"])
    resources = json_text(rekognition["Resource"])
    assert ":project/digits/*" in resources and ":project/moderation/*" in resources
    wildcard_actions = [a for s in statements for a in as_list(s["Action"]) if a.endswith("*")]
    assert wildcard_actions == []
    star_actions = sorted(a for s in statements if s["Resource"] == "*" for a in as_list(s["Action"]))
    # Only actions the Service Authorization Reference lists without a resource type
    assert star_actions == [
        "rekognition:CreateProject",
        "rekognition:DescribeProjects",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    ]


def as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def json_text(value: Any) -> str:
    import json

    return json.dumps(value)
