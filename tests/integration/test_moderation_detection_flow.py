"""Moderation detection offline: a promoted adapter answers DetectModerationLabels for inference
uploads, results reach SNS; with a human review flow definition each image carries its A2I human
loop (activated or not), the loop name stays the same when the image is delivered again; an expired
adapter is reported as the base model answering."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from lambdas.common.settings import AppSettings, ProjectSettings
from lambdas.detection import policy as detection_policy
from tests.integration.serving_support import OfflineStack, detections, digits, offline_world, s3_notification

FLOW = "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/moderation-review"
# botocore model of DetectModerationLabels: HumanLoopName, 1-63 characters of this pattern.
LOOP_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9])*$")
FAST = {"model_poll_seconds": 1, "idle_minutes": 1, "start_retry_limit": 1, "review_confidence": 60.0}
# The engine's simulated A2I (docs/engine.md): a loop starts when an unsafe label's confidence
# lies in [50, 90).
BAND = (50.0, 90.0)


def moderation_settings(**human_review: Any) -> AppSettings:
    project = ProjectSettings(feature="CONTENT_MODERATION", **FAST, **human_review)
    return AppSettings(projects={"moderation": project}, controller_rate_minutes=1)


def upload_posts(stack: OfflineStack) -> list[str]:
    """Digits the adapter was not trained on (later images of its labels, and other digits)."""
    keys = []
    chosen: dict[str, int] = {}
    for label, image in digits((0, 1, 2, 3, 8)):
        chosen[label] = chosen.get(label, 0) + 1
        if 20 <= chosen[label] < 23:
            keys.append(stack.upload_inference("moderation", f"posts/{label}-{chosen[label]}.png", image))
    return keys


def redeliver(stack: OfflineStack, key: str) -> None:
    """S3 sends the notification of the same object version again."""
    head = stack.s3.head_object(Bucket=stack.bucket, Key=key)
    notification = s3_notification(stack.bucket, key, head.get("VersionId"), head["ETag"].strip('"'), 1)
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(notification))


def forget_classifications(stack: OfflineStack) -> None:
    """Empties the detection idempotency table, as when its records expired (7 days) or an attempt
    stopped after Rekognition answered and before the record was completed."""
    dynamodb = stack.runtime.client("dynamodb")
    [table] = [name for name in dynamodb.list_tables()["TableNames"] if "dempotency" in name]
    for item in dynamodb.scan(TableName=table)["Items"]:
        dynamodb.delete_item(TableName=table, Key={"id": item["id"]})


def by_key(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {result["image"]["key"]: result for result in results}
    assert len(found) == len(results), "one result per image"
    return found


@pytest.mark.slow
def test_adapter_results_reach_sns_and_an_expired_adapter_is_reported(monkeypatch: Any) -> None:
    with offline_world(monkeypatch, moderation_settings(), {"moderation": "CONTENT_MODERATION"}) as world:
        stack, adapter = world.stack, world.versions["moderation"]
        # Given inference uploads to a moderation project with a promoted adapter
        keys = upload_posts(stack)
        # When detection runs
        assert stack.poll_detection() == (len(keys), 0)
        # Then every image has one result, answered by the adapter, without human review
        results = by_key(detections(stack))
        assert sorted(results) == sorted(keys)
        for result in results.values():
            assert result["model"] == {
                "feature": "CONTENT_MODERATION",
                "arn": adapter,
                "adapter_applied": True,
                "answered_by": "adapter",
            }
            assert result["human_loop"] is None
            assert result["_attributes"]["answered_by"] == "adapter"
            assert "human_loop" not in result["_attributes"]
            stored = stack.s3.get_object(
                Bucket=stack.bucket,
                Key=result["image"]["key"].replace("/inference/", "/results/", 1) + ".json",
            )
            assert json.loads(stored["Body"].read())["model"]["answered_by"] == "adapter"
        assert any(result["status"] == "CLASSIFIED" for result in results.values())

        # Given the adapter has expired by the time the next image is classified
        world.engine.faults.expire_adapter(project="moderation")
        key = stack.upload_inference("moderation", "posts/after-expiry.png", digits((0,))[25][1])
        assert stack.poll_detection() == (1, 0)
        # Then the result and its SNS attributes say the base model answered
        [expired] = detections(stack)
        assert expired["image"]["key"] == key
        assert expired["model"]["answered_by"] == "base_model"
        assert expired["model"]["adapter_applied"] is False
        assert expired["_attributes"]["answered_by"] == "base_model"
        assert stack.dead_letter_depth() == 0


@pytest.mark.slow
def test_human_review_per_image_with_stable_loop_names(monkeypatch: Any) -> None:
    # The human loop quota is waited out like throttling; no backoff base keeps the test short.
    monkeypatch.setattr(detection_policy, "THROTTLE_BASE_SECONDS", 0)
    settings = moderation_settings(
        human_loop_flow_definition_arn=FLOW, human_loop_content_classifiers=("FreeOfAdultContent",)
    )
    with offline_world(monkeypatch, settings, {"moderation": "CONTENT_MODERATION"}) as world:
        stack = world.stack
        # Given a moderation project whose results go to an A2I human review workflow
        keys = upload_posts(stack)
        # When detection runs
        assert stack.poll_detection() == (len(keys), 0)
        results = by_key(detections(stack))
        assert sorted(results) == sorted(keys)
        # Then each result names its human loop, and says whether it started
        names = set()
        for result in results.values():
            loop = result["human_loop"]
            assert loop["flow_definition_arn"] == FLOW
            assert LOOP_NAME.match(loop["name"]) and len(loop["name"]) <= 63
            names.add(loop["name"])
            in_band = any(BAND[0] <= label["confidence"] < BAND[1] for label in result["labels"])
            if in_band:
                assert loop["status"] == "activated", result
                assert loop["arn"] == f"arn:aws:sagemaker:us-east-1:123456789012:human-loop/{loop['name']}"
                assert loop["reasons"] == ["ConditionsEvaluation"]
            else:
                assert loop["status"] == "not_activated", result
                assert loop["arn"] is None
            assert result["_attributes"]["human_loop"] == loop["status"]
            assert loop["conditions"]["Conditions"][0]["ConditionType"] == "ModerationLabelConfidenceCheck"
        # Different images, different loops; both outcomes occur among these images
        assert len(names) == len(keys)
        assert {result["human_loop"]["status"] for result in results.values()} == {
            "activated",
            "not_activated",
        }

        # When S3 delivers the same notifications again
        for key in keys[:4]:
            redeliver(stack, key)
        assert stack.poll_detection() == (4, 0)
        # Then nothing is classified or sent to review twice
        assert detections(stack) == []

        # When an image version is classified again after its idempotency record is gone
        forget_classifications(stack)
        for key in keys[:4]:
            redeliver(stack, key)
        assert stack.poll_detection() == (4, 0)
        # Then it asks for the same human loop as the first time (the service sees the same name)
        again = by_key(detections(stack))
        assert sorted(again) == sorted(keys[:4])
        for key, result in again.items():
            assert result["human_loop"]["name"] == results[key]["human_loop"]["name"]
            assert result["human_loop"]["status"] == results[key]["human_loop"]["status"]

        # Given the account's in-progress human loops are at their quota for the next call
        world.engine.faults.fail(
            "DetectModerationLabels", code="HumanLoopQuotaExceededException", project="moderation"
        )
        key = stack.upload_inference("moderation", "posts/at-quota.png", digits((1,))[30][1])
        # When detection runs until the queue is empty
        handed_total, failed_total = 0, 0
        for _ in range(20):
            handed, failed = stack.poll_detection()
            handed_total, failed_total = handed_total + handed, failed_total + failed
            if stack.queue_depth() == 0:
                break
        # Then the image waited (sent back once, not failed) and has exactly one result
        assert (handed_total, failed_total) == (2, 0)
        [waited] = detections(stack)
        assert waited["image"]["key"] == key
        assert waited["human_loop"]["status"] in ("activated", "not_activated")
        assert stack.dead_letter_depth() == 0
