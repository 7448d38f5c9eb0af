"""Result documents, SNS message attributes, result and review keys, review routing."""

from __future__ import annotations

import json

import boto3
from botocore.stub import ANY, Stubber

from lambdas.detection.detect import BadImage, Detection, ImageRef, Label
from lambdas.detection.results import (
    ResultSink,
    detection_result,
    error_result,
    message_attributes,
    result_key,
)
from lambdas.detection.review import needs_review, review_key

IMAGE = ImageRef("bucket", "digits/inference/2026/a b.png", version_id="v1", etag="abc")
VERSION = "arn:aws:rekognition:us-east-1:123456789012:project/digits/version/v1/1"


def test_keys_keep_the_inference_remainder() -> None:
    assert result_key(IMAGE) == "digits/results/2026/a b.png.json"
    assert review_key(IMAGE) == "digits/review/2026/a b.png"


def test_classified_result_and_its_attributes() -> None:
    detection = Detection("CUSTOM_LABELS", VERSION, (Label("7", 88.12345), Label("1", 10.0)))
    result = detection_result(IMAGE, detection, min_confidence=None, detected_at=0.0)
    assert result["status"] == "CLASSIFIED"
    assert (result["top_label"], result["confidence"]) == ("7", 88.123)
    assert result["image"] == {"bucket": "bucket", "key": IMAGE.key, "version_id": "v1", "etag": "abc"}
    assert result["detected_at"] == "1970-01-01T00:00:00+00:00"
    assert message_attributes(result) == {
        "project": {"DataType": "String", "StringValue": "digits"},
        "status": {"DataType": "String", "StringValue": "CLASSIFIED"},
        "confidence": {"DataType": "Number", "StringValue": "88.123"},
        "top_label": {"DataType": "String", "StringValue": "7"},
    }


def test_no_label_and_error_results() -> None:
    empty = detection_result(
        IMAGE, Detection("CUSTOM_LABELS", VERSION, ()), min_confidence=50.0, detected_at=0.0
    )
    assert empty["status"] == "NO_LABEL"
    assert "top_label" not in message_attributes(empty)
    assert message_attributes(empty)["confidence"]["StringValue"] == "0.000"
    error = error_result(
        IMAGE,
        BadImage("InvalidImageFormatException", "bad format"),
        feature="CUSTOM_LABELS",
        model_arn=VERSION,
        detected_at=0.0,
    )
    assert error["status"] == "ERROR"
    assert error["error"]["message"].startswith("s3://bucket/digits/inference/2026/a b.png")
    assert "PNG or JPEG" in error["error"]["action"]


def test_review_routing() -> None:
    assert needs_review("CLASSIFIED", 59.9, 60.0)
    assert not needs_review("CLASSIFIED", 60.0, 60.0)
    assert needs_review("NO_LABEL", None, 60.0)
    assert not needs_review("ERROR", None, 60.0)
    assert not needs_review("CLASSIFIED", 1.0, None)


def test_sink_writes_json_and_publishes_with_attributes() -> None:
    s3, sns = boto3.client("s3", region_name="us-east-1"), boto3.client("sns", region_name="us-east-1")
    topic = "arn:aws:sns:us-east-1:123456789012:detections"
    result = detection_result(
        IMAGE, Detection("CUSTOM_LABELS", VERSION, (Label("7", 90.0),)), min_confidence=None, detected_at=0.0
    )
    body = json.dumps(result, sort_keys=True)
    with Stubber(s3) as s3_stub, Stubber(sns) as sns_stub:
        s3_stub.add_response(
            "copy_object",
            {},
            {
                "Bucket": "bucket",
                "Key": "digits/review/2026/a b.png",
                "CopySource": {"Bucket": "bucket", "Key": IMAGE.key, "VersionId": "v1"},
            },
        )
        s3_stub.add_response(
            "put_object",
            {},
            {
                "Bucket": "bucket",
                "Key": "digits/results/2026/a b.png.json",
                "Body": body.encode(),
                "ContentType": "application/json",
            },
        )
        sns_stub.add_response(
            "publish",
            {"MessageId": "1"},
            {
                "TopicArn": topic,
                "Message": body,
                "Subject": ANY,
                "MessageAttributes": message_attributes(result),
            },
        )
        sink = ResultSink(topic, s3, sns)
        sink.copy_to_review(IMAGE, review_key(IMAGE))
        sink.deliver(IMAGE, result)
        s3_stub.assert_no_pending_responses()
        sns_stub.assert_no_pending_responses()
