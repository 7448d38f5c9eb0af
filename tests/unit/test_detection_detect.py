"""Detector: the Rekognition requests it sends and how it reads answers and errors (Stubber)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lambdas.detection.detect import (
    BadImage,
    Detector,
    ImageRef,
    ModelNotReady,
    NotAnInferenceImage,
    Throttled,
    image_from_notification,
)

VERSION = "arn:aws:rekognition:us-east-1:123456789012:project/digits/version/v1/1"
ADAPTER = "arn:aws:rekognition:us-east-1:123456789012:project/moderation/version/a1/1"
IMAGE = ImageRef("bucket", "digits/inference/batch 1/a.png", version_id="v9", etag="e")


def stubbed() -> tuple[Any, Stubber]:
    client = boto3.client("rekognition", region_name="us-east-1")
    return client, Stubber(client)


def test_keys_are_url_decoded_and_split_into_project_and_remainder() -> None:
    image = image_from_notification("bucket", "digits/inference/batch+1/a%281%29.png", "v1", "etag")
    assert image.key == "digits/inference/batch 1/a(1).png"
    assert (image.project, image.remainder) == ("digits", "batch 1/a(1).png")
    with pytest.raises(NotAnInferenceImage, match=r"digits/train/x\.png"):
        image_from_notification("bucket", "digits/train/x.png", None, None)


def test_custom_labels_request_with_assumed_thresholds_sorted_by_confidence() -> None:
    client, stub = stubbed()
    stub.add_response(
        "detect_custom_labels",
        {"CustomLabels": [{"Name": "1", "Confidence": 20.0}, {"Name": "7", "Confidence": 91.5}]},
        {
            "ProjectVersionArn": VERSION,
            "Image": {"S3Object": {"Bucket": "bucket", "Name": IMAGE.key, "Version": "v9"}},
            "MaxResults": 5,
        },  # no MinConfidence: each label's assumed threshold applies
    )
    with stub:
        detection = Detector(client).detect(
            IMAGE, feature="CUSTOM_LABELS", model_arn=VERSION, min_confidence=None, max_results=5
        )
    assert [label.name for label in detection.labels] == ["7", "1"]
    assert detection.top is not None and detection.top.confidence == 91.5


def test_configured_min_confidence_is_sent() -> None:
    client, stub = stubbed()
    stub.add_response(
        "detect_custom_labels",
        {"CustomLabels": []},
        {
            "ProjectVersionArn": VERSION,
            "Image": {"S3Object": {"Bucket": "bucket", "Name": IMAGE.key, "Version": "v9"}},
            "MaxResults": 10,
            "MinConfidence": 55.0,
        },
    )
    with stub:
        detection = Detector(client).detect(
            IMAGE, feature="CUSTOM_LABELS", model_arn=VERSION, min_confidence=55.0, max_results=10
        )
    assert detection.top is None


def test_moderation_uses_the_adapter_and_reports_an_ignored_one() -> None:
    client, stub = stubbed()
    image = ImageRef("bucket", "moderation/inference/x.jpg")
    stub.add_response(
        "detect_moderation_labels",
        {
            "ModerationLabels": [{"Name": "Smoking", "Confidence": 80.0, "ParentName": "Drugs"}],
            "ProjectVersion": ADAPTER,
        },
        {
            "Image": {"S3Object": {"Bucket": "bucket", "Name": "moderation/inference/x.jpg"}},
            "ProjectVersion": ADAPTER,
        },
    )
    stub.add_response(
        "detect_moderation_labels",
        {"ModerationLabels": []},  # an EXPIRED adapter is ignored: no ProjectVersion in the answer
    )
    with stub:
        detector = Detector(client)
        applied = detector.detect(
            image, feature="CONTENT_MODERATION", model_arn=ADAPTER, min_confidence=None, max_results=3
        )
        ignored = detector.detect(
            image, feature="CONTENT_MODERATION", model_arn=ADAPTER, min_confidence=None, max_results=3
        )
    assert applied.adapter_applied is True
    assert applied.labels[0].to_dict() == {"name": "Smoking", "confidence": 80.0, "parent": "Drugs"}
    assert ignored.adapter_applied is False


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ResourceNotReadyException", ModelNotReady),
        ("ThrottlingException", Throttled),
        ("ProvisionedThroughputExceededException", Throttled),
        ("InvalidImageFormatException", BadImage),
        ("ImageTooLargeException", BadImage),
        ("InvalidS3ObjectException", BadImage),
    ],
)
def test_errors_are_classified(code: str, expected: type[Exception]) -> None:
    client, stub = stubbed()
    stub.add_client_error("detect_custom_labels", service_error_code=code, service_message="nope")
    with stub, pytest.raises(expected):
        Detector(client).detect(
            IMAGE, feature="CUSTOM_LABELS", model_arn=VERSION, min_confidence=None, max_results=1
        )


def test_bad_image_carries_advice_and_other_errors_propagate() -> None:
    client, stub = stubbed()
    stub.add_client_error("detect_custom_labels", service_error_code="InvalidImageFormatException")
    stub.add_client_error("detect_custom_labels", service_error_code="AccessDeniedException")
    with stub:
        with pytest.raises(BadImage) as bad:
            Detector(client).detect(
                IMAGE, feature="CUSTOM_LABELS", model_arn=VERSION, min_confidence=None, max_results=1
            )
        assert "PNG or JPEG" in bad.value.advice
        with pytest.raises(Exception, match="AccessDenied"):
            Detector(client).detect(
                IMAGE, feature="CUSTOM_LABELS", model_arn=VERSION, min_confidence=None, max_results=1
            )


def test_unsupported_extension_is_rejected_without_a_call() -> None:
    client, stub = stubbed()
    with stub, pytest.raises(BadImage, match="UnsupportedExtension"):
        Detector(client).detect(
            ImageRef("bucket", "digits/inference/notes.txt"),
            feature="CUSTOM_LABELS",
            model_arn=VERSION,
            min_confidence=None,
            max_results=1,
        )
