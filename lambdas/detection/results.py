"""Detection results: one JSON document per image version, kept in S3 and published on SNS.

Document (also the SNS message body)::

    {"project": "digits", "status": "CLASSIFIED" | "NO_LABEL" | "ERROR",
     "top_label": "7" | null, "confidence": 97.3 | null,
     "labels": [{"name": "7", "confidence": 97.3, "geometry": {...}?, "parent": "..."?}, ...],
     "image": {"bucket": "...", "key": "digits/inference/a.png", "version_id": "..."?, "etag": "..."?},
     "model": {"feature": "CUSTOM_LABELS", "arn": "<version or adapter ARN>", "adapter_applied": true?,
               "answered_by": "adapter" | "base_model"?},
     "min_confidence": null | 50.0, "review_key": "digits/review/a.png" | null,
     "human_loop": null | {"name": "...", "flow_definition_arn": "...",
                           "status": "activated" | "not_activated", "arn": "..." | null,
                           "reasons": [...], "conditions": {...} | null, "already_started": false},
     "error": null | {"code": "...", "message": "...", "action": "..."},
     "detected_at": "2026-11-21T18:00:00+00:00"}

S3 key: `<project>/results/<inference key remainder>.json`. SNS message attributes (for filter
policies): project, status, confidence (Number, 0 when there is no label), top_label (only when
there is one), and for moderation answered_by (adapter or base_model) and human_loop (activated or
not_activated; only when the project configures a human review flow definition).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from lambdas.common import aws
from lambdas.common.constants import (
    ATTR_ANSWERED_BY,
    ATTR_CONFIDENCE,
    ATTR_HUMAN_LOOP,
    ATTR_PROJECT,
    ATTR_STATUS,
    ATTR_TOP_LABEL,
    DETECTION_STATUS_ERROR,
    DETECTION_STATUS_NO_LABEL,
    DETECTION_STATUS_OK,
    RESULTS_FOLDER,
)
from lambdas.detection.detect import BadImage, Detection, ImageRef


def result_key(image: ImageRef) -> str:
    return f"{image.project}/{RESULTS_FOLDER}/{image.remainder}.json"


def _image(image: ImageRef) -> dict[str, Any]:
    data: dict[str, Any] = {"bucket": image.bucket, "key": image.key}
    if image.version_id:
        data["version_id"] = image.version_id
    if image.etag:
        data["etag"] = image.etag
    return data


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def detection_result(
    image: ImageRef, detection: Detection, *, min_confidence: float | None, detected_at: float
) -> dict[str, Any]:
    top = detection.top
    model: dict[str, Any] = {"feature": detection.feature, "arn": detection.model_arn}
    if detection.adapter_applied is not None:
        model["adapter_applied"] = detection.adapter_applied
    if detection.answered_by is not None:
        model["answered_by"] = detection.answered_by
    return {
        "project": image.project,
        "status": DETECTION_STATUS_OK if top else DETECTION_STATUS_NO_LABEL,
        "top_label": top.name if top else None,
        "confidence": round(top.confidence, 3) if top else None,
        "labels": [label.to_dict() for label in detection.labels],
        "image": _image(image),
        "model": model,
        "min_confidence": min_confidence,
        "review_key": None,
        "human_loop": detection.human_loop,
        "error": None,
        "detected_at": _iso(detected_at),
    }


def error_result(
    image: ImageRef, error: BadImage, *, feature: str, model_arn: str | None, detected_at: float
) -> dict[str, Any]:
    return {
        "project": image.project,
        "status": DETECTION_STATUS_ERROR,
        "top_label": None,
        "confidence": None,
        "labels": [],
        "image": _image(image),
        "model": {"feature": feature, "arn": model_arn},
        "min_confidence": None,
        "review_key": None,
        "human_loop": None,
        "error": {
            "code": error.code,
            "message": f"s3://{image.bucket}/{image.key}: {error.message}",
            "action": error.advice,
        },
        "detected_at": _iso(detected_at),
    }


def message_attributes(result: dict[str, Any]) -> dict[str, dict[str, str]]:
    attributes = {
        ATTR_PROJECT: {"DataType": "String", "StringValue": str(result["project"])},
        ATTR_STATUS: {"DataType": "String", "StringValue": str(result["status"])},
        ATTR_CONFIDENCE: {"DataType": "Number", "StringValue": f"{float(result['confidence'] or 0):.3f}"},
    }
    if result.get("top_label"):
        attributes[ATTR_TOP_LABEL] = {"DataType": "String", "StringValue": str(result["top_label"])[:256]}
    answered_by = (result.get("model") or {}).get("answered_by")
    if answered_by:
        attributes[ATTR_ANSWERED_BY] = {"DataType": "String", "StringValue": str(answered_by)}
    if result.get("human_loop"):
        attributes[ATTR_HUMAN_LOOP] = {
            "DataType": "String",
            "StringValue": str(result["human_loop"]["status"]),
        }
    return attributes


class ResultSink:
    """Writes the JSON, copies low-confidence images to review/, publishes on the detections topic."""

    def __init__(self, topic_arn: str, s3_client: Any | None = None, sns_client: Any | None = None) -> None:
        self._topic_arn = topic_arn
        self._s3 = s3_client
        self._sns = sns_client

    s3 = aws.LazyClient("s3", "_s3")

    sns = aws.LazyClient("sns", "_sns")

    def copy_to_review(self, image: ImageRef, review_key: str) -> None:
        source: dict[str, str] = {"Bucket": image.bucket, "Key": image.key}
        if image.version_id:
            source["VersionId"] = image.version_id
        self.s3.copy_object(Bucket=image.bucket, Key=review_key, CopySource=source)

    def deliver(self, image: ImageRef, result: dict[str, Any]) -> None:
        body = json.dumps(result, sort_keys=True)
        self.s3.put_object(
            Bucket=image.bucket, Key=result_key(image), Body=body.encode(), ContentType="application/json"
        )
        self.sns.publish(
            TopicArn=self._topic_arn,
            Message=body,
            Subject=f"[autopilot] {result['project']}: {result['status']}"[:100],
            MessageAttributes=message_attributes(result),
        )
