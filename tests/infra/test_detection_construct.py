"""Detection construct: S3 -> SQS (KMS, DLQ, alarm) -> Lambda with partial batch responses."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from infra.constructs.detection import Detection
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
