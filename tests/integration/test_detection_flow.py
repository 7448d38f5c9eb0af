"""Detection edge cases on the local engine: unusable images, throttling, a moderation adapter."""

from __future__ import annotations

import io
from typing import Any

import pytest
from botocore.config import Config
from PIL import Image

from lambdas.common import aws
from lambdas.detection import policy as detection_policy
from tests.integration.serving_support import detections, digits, fast_settings, offline_world


def png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (255, 255, 255)).save(buffer, "PNG")
    return buffer.getvalue()


def dlq_depth(stack: Any) -> int:
    url = stack.dead_letter_url
    attributes = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def start_model(stack: Any) -> None:
    assert stack.request("digits", "start", override_minutes=30)["action"] == "START"
    assert stack.wait_transition("digits") == "RUNNING"


@pytest.mark.slow
def test_bad_images_get_error_results_and_throttled_ones_wait(monkeypatch: Any) -> None:
    # The client's own retries are turned off so injected throttling reaches the handler.
    monkeypatch.setattr(aws, "_CONFIG", Config(retries={"total_max_attempts": 1, "mode": "standard"}))
    monkeypatch.setattr(detection_policy, "THROTTLE_BASE_SECONDS", 0)
    with offline_world(monkeypatch, fast_settings(), {"digits": "CUSTOM_LABELS"}) as world:
        stack = world.stack
        start_model(stack)
        # Given unusable images
        stack.upload_inference("digits", "text.png", b"this is not an image")
        stack.upload_inference("digits", "tiny.png", png(32))
        stack.upload_inference("digits", "corrupt.png", png(64)[:40])
        stack.upload_inference("digits", "notes.txt", b"hello")
        gone = stack.upload_inference("digits", "gone.png", png(64))
        for version in stack.s3.list_object_versions(Bucket=stack.bucket, Prefix=gone)["Versions"]:
            stack.s3.delete_object(Bucket=stack.bucket, Key=gone, VersionId=version["VersionId"])
        # When detection runs
        handed, failed = stack.poll_detection()
        # Then each gets one ERROR result naming the problem, none is retried or reviewed
        assert (handed, failed) == (5, 0)
        results = {result["image"]["key"].split("/")[-1]: result for result in detections(stack)}
        assert set(results) == {"text.png", "tiny.png", "corrupt.png", "notes.txt", "gone.png"}
        assert {name: (result["error"] or {}).get("code") for name, result in results.items()} == {
            "text.png": "InvalidImageFormatException",
            "tiny.png": "InvalidParameterException",
            "corrupt.png": "InvalidImageFormatException",
            "notes.txt": "UnsupportedExtension",
            "gone.png": "InvalidS3ObjectException",
        }
        assert all(
            result["status"] == "ERROR" and result["_attributes"]["status"] == "ERROR"
            for result in results.values()
        )
        assert all(result["error"]["action"] for result in results.values())
        assert stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix="digits/review/")["KeyCount"] == 0
        assert stack.queue_depth() == 0

        # Given Rekognition throttles the next two calls
        world.engine.faults.throttle("DetectCustomLabels", count=2, project="digits")
        for index, (_, image) in enumerate(digits((0, 1))[:3]):
            stack.upload_inference("digits", f"busy/{index}.png", image)
        # When detection runs until the queue is empty
        handed_total, failed_total = 0, 0
        for _ in range(20):
            handed, failed = stack.poll_detection()
            handed_total, failed_total = handed_total + handed, failed_total + failed
            if stack.queue_depth() == 0:
                break
        # Then the throttled images waited (re-sent, not failed) and every image has exactly one result
        assert failed_total == 0
        assert handed_total == 5  # 3 images + 2 re-sent after throttling
        keys = sorted(result["image"]["key"] for result in detections(stack))
        assert keys == [f"digits/inference/busy/{index}.png" for index in range(3)]
        assert dlq_depth(stack) == 0


@pytest.mark.slow
def test_moderation_project_uses_its_adapter_without_starting_anything(monkeypatch: Any) -> None:
    with offline_world(monkeypatch, fast_settings(), {"moderation": "CONTENT_MODERATION"}) as world:
        stack = world.stack
        adapter = world.versions["moderation"]
        # The controller leaves adapters alone
        assert "adapters" in stack.tick("moderation")["reason"]
        for index, (_, image) in enumerate(digits((0, 1))[:4]):
            stack.upload_inference("moderation", f"posts/{index}.png", image)
        assert stack.poll_detection() == (4, 0)
        results = detections(stack)
        assert len(results) == 4
        for result in results:
            assert result["model"] == {
                "feature": "CONTENT_MODERATION",
                "arn": adapter,
                "adapter_applied": True,
                "answered_by": "adapter",
            }
            assert result["status"] in ("CLASSIFIED", "NO_LABEL")
            assert result["_attributes"]["project"] == "moderation"
        stored = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix="moderation/results/posts/")
        assert stored["KeyCount"] == 4
