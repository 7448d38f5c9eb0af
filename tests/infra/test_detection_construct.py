"""Detection construct: S3 -> SQS (KMS, DLQ, alarm) -> Lambda with partial batch responses."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from infra.app_factory import REPO_ROOT
from infra.constructs.detection import Detection
from infra.constructs.notifications import Notifications
from infra.constructs.serving import Serving
from infra.constructs.storage import Storage
from lambdas.common.settings import load_cdk_context, settings_from_context
from tests.infra.test_serving_construct import synth_serving_stack


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, Detection]:
    template, _, detection = synth_serving_stack(str(tmp_path_factory.mktemp("detection-cdk")))
    return template, detection


@pytest.fixture(scope="module")
def template(synthesized: tuple[Template, Detection]) -> Template:
    return synthesized[0]


def test_construct_exposes_queue_dlq_and_functions(synthesized: tuple[Template, Detection]) -> None:
    _, detection = synthesized
    assert detection.queue is not None and detection.dlq is not None
    assert len(detection.functions) == 1


def test_queues_are_encrypted_with_a_dead_letter_queue(template: Template) -> None:
    # detection's queue and its dead-letter queue, and serving's model control dead-letter queue
    template.resource_count_is("AWS::SQS::Queue", 3)
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "KmsMasterKeyId": Match.any_value(),
            "VisibilityTimeout": 360,
            "RedrivePolicy": {"deadLetterTargetArn": Match.any_value(), "maxReceiveCount": 5},
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold"}
    )


def test_inference_prefixes_of_every_project_notify_the_queue(template: Template) -> None:
    [notifications] = template.find_resources("Custom::S3BucketNotifications").values()
    configs = notifications["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    prefixes = sorted(config["Filter"]["Key"]["FilterRules"][0]["Value"] for config in configs)
    assert "digits/inference/" in prefixes
    assert "moderation/inference/" in prefixes


def test_handler_reports_partial_batch_failures(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"FunctionResponseTypes": ["ReportBatchItemFailures"], "ScalingConfig": {"MaximumConcurrency": 5}},
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "lambdas.detection.handler.handle",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "DETECTION_QUEUE_URL": Match.any_value(),
                        "IDEMPOTENCY_TABLE_NAME": Match.any_value(),
                        "DETECTIONS_TOPIC_ARN": Match.any_value(),
                    }
                )
            },
        },
    )


def test_handler_may_detect_only_with_configured_projects(template: Template) -> None:
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "rekognition:DetectCustomLabels",
                                "Resource": {
                                    "Fn::Join": [
                                        "",
                                        Match.array_with(
                                            [Match.string_like_regexp("project/digits/version/\\*")]
                                        ),
                                    ]
                                },
                            }
                        )
                    ]
                )
            }
        },
    )


# --- human review (Amazon A2I) -------------------------------------------------------------------
REVIEW_FLOW = "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/moderation-review"
SECOND_FLOW = "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/forum-review"


def synth_with_projects(outdir: str, extra: dict[str, Any]) -> Template:
    """The detection stack of cdk.json with `extra` merged into its projects, under cdk-nag."""
    context = load_cdk_context(str(REPO_ROOT / "cdk.json"))
    context["projects"] = {**context["projects"], **extra}
    app = App(outdir=outdir, context=context)
    settings = settings_from_context(context)
    stack = Stack(app, "DetectionUnderTest")
    storage = Storage(stack, "Storage", settings=settings)
    notifications = Notifications(stack, "Notifications", settings=settings, key=storage.key)
    serving = Serving(stack, "Serving", settings=settings, storage=storage, notifications=notifications)
    Detection(
        stack, "Detection", settings=settings, storage=storage, notifications=notifications, serving=serving
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    app.synth()  # raises on any unacknowledged cdk-nag finding
    return Template.from_stack(stack)


def statements_with(template: Template, prefix: str) -> list[dict[str, Any]]:
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(action.startswith(prefix) for action in actions):
                found.append(statement)
    return found


def test_no_human_loop_permission_when_no_project_configures_a_flow_definition(template: Template) -> None:
    assert statements_with(template, "sagemaker:") == []


def test_human_loops_may_start_only_on_the_configured_flow_definitions(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    template = synth_with_projects(
        str(tmp_path_factory.mktemp("detection-a2i")),
        {
            "moderation": {"feature": "CONTENT_MODERATION", "human_loop_flow_definition_arn": REVIEW_FLOW},
            "forum": {
                "feature": "CONTENT_MODERATION",
                "human_loop_flow_definition_arn": SECOND_FLOW,
                "human_loop_content_classifiers": ["FreeOfPersonallyIdentifiableInformation"],
            },
            "comments": {"feature": "CONTENT_MODERATION"},
        },
    )
    [statement] = statements_with(template, "sagemaker:")
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sagemaker:StartHumanLoop"
    assert sorted(statement["Resource"]) == [
        "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/forum-review",
        "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/moderation-review",
    ]
    assert "Condition" not in statement
    # and the data bucket carries the CORS rule the A2I guide requires for input images
    [bucket] = [
        b
        for b in template.find_resources("AWS::S3::Bucket").values()
        if "VersioningConfiguration" in b["Properties"]
    ]
    assert bucket["Properties"]["CorsConfiguration"]["CorsRules"] == [
        {"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}
    ]


def test_no_cors_on_the_data_bucket_without_human_review(template: Template) -> None:
    buckets = template.find_resources("AWS::S3::Bucket").values()
    assert buckets and not any("CorsConfiguration" in b["Properties"] for b in buckets)
