"""The whole serving loop offline: images wait while the model is stopped, start it, are all
classified exactly once, and the model stops after the idle timeout.

Real handlers, the real start/stop state machine definition (moto executes it, its Rekognition
tasks reach the local engine), a model really trained on the engine, and a fake clock for the
controller and detection (only the engine's scaled start/stop and SQS delays take real time).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest

from tests.integration.serving_support import (
    detections,
    digits,
    fast_settings,
    lifecycle_types,
    offline_world,
    s3_notification,
)

IMAGES = 200


def classify_until(world: Any, project: str, expected: int, rounds: int = 120) -> list[dict[str, Any]]:
    """Alternates detection batches and controller ticks (fake clock +10 s a round) until done."""
    stack = world.stack
    results: list[dict[str, Any]] = []
    for _ in range(rounds):
        stack.poll_detection()
        stack.tick(project)
        results.extend(detections(stack))
        if len(results) >= expected and stack.queue_depth() == 0:
            return results
        stack.clock.advance(10)
        time.sleep(0.3)  # let delayed messages and the state machine move on (real time)
    raise AssertionError(f"only {len(results)} of {expected} images classified after {rounds} rounds")


@pytest.mark.slow
def test_images_uploaded_while_stopped_start_the_model_and_all_are_classified_once(monkeypatch: Any) -> None:
    with offline_world(monkeypatch, fast_settings(), {"digits": "CUSTOM_LABELS"}) as world:
        stack = world.stack
        # Given a trained production model that is not running
        assert stack.tick("digits")["model_status"] == "TRAINING_COMPLETED"
        images = digits((0, 1, 2))[-IMAGES:]
        truth = {}
        # When 200 images are uploaded
        for index, (label, png) in enumerate(images):
            key = stack.upload_inference("digits", f"batch/{index:03d}.png", png)
            truth[key] = label
        # Then the first batches defer (nothing dropped, nothing failed) and the controller starts the model
        handed, failed = stack.poll_detection(limit=IMAGES)
        assert (handed, failed) == (IMAGES, 0)
        assert stack.queue_depth() == IMAGES  # all waiting again, with a delay
        first = stack.tick("digits")
        assert first["action"] == "START", first
        # A second tick while the start is in progress does not start again
        assert stack.tick("digits")["action"] == "NONE"
        assert stack.wait_transition("digits") == "RUNNING"

        results = classify_until(world, "digits", IMAGES)

        # Every image classified exactly once
        keys = [result["image"]["key"] for result in results]
        assert len(keys) == IMAGES
        assert set(keys) == set(truth)
        assert all(result["status"] in ("CLASSIFIED", "NO_LABEL") for result in results)
        correct = sum(result["top_label"] == truth[result["image"]["key"]] for result in results)
        assert correct >= 0.8 * IMAGES
        listed = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix="digits/results/batch/")
        assert listed["KeyCount"] == IMAGES
        # Attributes subscribers filter on
        sample = results[0]
        assert set(sample["_attributes"]) >= {"project", "status", "confidence"}
        assert sample["_attributes"]["project"] == "digits"
        # Nothing reached the DLQ
        dlq = stack.dead_letter_url
        assert (
            stack.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
            == "0"
        )

        # When S3 redelivers a notification for an image already classified
        for key in list(truth)[:5]:
            head = stack.s3.head_object(Bucket=stack.bucket, Key=key)
            notification = s3_notification(
                stack.bucket, key, head.get("VersionId"), head["ETag"].strip('"'), 1
            )
            stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(notification))
        stack.poll_detection()
        # Then no second result is published
        assert detections(stack) == []

        # The model keeps running within the idle timeout and stops at the first tick after it
        assert stack.tick("digits")["action"] == "NONE"
        stack.clock.advance(61)
        stopping = stack.tick("digits")
        assert stopping["action"] == "STOP", stopping
        assert stack.wait_transition("digits") == "STOPPED"
        # (the state machine publishes after releasing the lock, so the order between a state machine's
        # event and the controller's next one is not fixed)
        assert Counter(lifecycle_types(stack, "digits", expected=4)) == Counter(
            ["model.starting", "model.running", "model.stopping", "model.stopped"]
        )
