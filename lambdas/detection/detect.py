"""Detection domain: which image, which call, and what the answer means.

`Detector` is the only place that calls Rekognition. It turns the service's answers into a
`Detection` (labels sorted by confidence) and its errors into three exceptions the handler acts on:

* `ModelNotReady`  the version is not RUNNING (ResourceNotReadyException): wait in the queue;
* `Throttled`      throttling or provisioned throughput exceeded (after the client's own retries),
                   or A2I's quota of in-progress human loops reached: wait in the queue, with backoff;
* `BadImage`       the image itself is unusable (format, size, corrupt, missing): an ERROR result,
                   never retried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from lambdas.common import aws
from lambdas.common.constants import (
    ANSWERED_BY_ADAPTER,
    ANSWERED_BY_BASE_MODEL,
    FEATURE_CONTENT_MODERATION,
    IMAGE_SUFFIXES,
    INFERENCE_FOLDER,
)
from lambdas.detection import human_loop
from lambdas.detection.human_loop import HumanLoopRequest

NOT_READY_ERRORS = frozenset({"ResourceNotReadyException"})
THROTTLING_ERRORS = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "InternalServerError",
        "ServiceUnavailableException",
    }
    | human_loop.QUOTA_CODES
)
# What a person should do about each unusable image.
BAD_IMAGE_ADVICE = {
    "InvalidImageFormatException": "upload a PNG or JPEG image",
    "ImageTooLargeException": "upload an image of at most 15 MB and 4096 x 4096 pixels",
    "InvalidS3ObjectException": "the object is missing, unreadable or corrupt; upload it again",
    "InvalidParameterException": "check the image size (at least 64 x 64 pixels, aspect ratio at most 20:1)",
    "UnsupportedExtension": "upload a .png, .jpg or .jpeg file",
}


class ModelNotReady(Exception):
    pass


class NoProductionVersion(ModelNotReady):
    """No version has been promoted yet: wait (bounded) without asking for a start."""


class Throttled(Exception):
    pass


class BadImage(Exception):
    """An image that no retry can classify; reported as an ERROR result naming what to do."""

    def __init__(self, code: str, message: str, advice: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.advice = advice or BAD_IMAGE_ADVICE.get(code, "check the image and upload it again")


class NotAnInferenceImage(ValueError):
    pass


@dataclass(frozen=True)
class ImageRef:
    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None

    @property
    def project(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def remainder(self) -> str:
        """The part of the key after "<project>/inference/"."""
        return self.key.split("/", 2)[2]

    def s3_object(self) -> dict[str, str]:
        s3_object = {"Bucket": self.bucket, "Name": self.key}
        if self.version_id:
            s3_object["Version"] = self.version_id
        return s3_object

    def payload(self) -> dict[str, str | None]:
        """The image version as plain data: the idempotency key (bucket, key, version id and ETag)."""
        return {"bucket": self.bucket, "key": self.key, "version_id": self.version_id, "etag": self.etag}

    def human_loop_name(self) -> str:
        """The A2I human loop name of this image version (human_loop.py)."""
        return human_loop.human_loop_name(self.project, self.bucket, self.key, self.version_id or self.etag)


def image_from_notification(bucket: str, raw_key: str, version_id: str | None, etag: str | None) -> ImageRef:
    """Builds an ImageRef from an S3 notification (keys arrive URL-encoded, '+' for space)."""
    key = unquote_plus(raw_key)
    parts = key.split("/", 2)
    if len(parts) < 3 or parts[1] != INFERENCE_FOLDER or not parts[0] or not parts[2]:
        raise NotAnInferenceImage(
            f"s3://{bucket}/{key} is not under '<project>/{INFERENCE_FOLDER}/'; only that folder is read"
        )
    return ImageRef(bucket=bucket, key=key, version_id=version_id or None, etag=etag or None)


@dataclass(frozen=True)
class Label:
    name: str
    confidence: float
    parent: str | None = None
    geometry: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "confidence": round(self.confidence, 3)}
        if self.parent:
            data["parent"] = self.parent
        if self.geometry:
            data["geometry"] = self.geometry
        return data


@dataclass(frozen=True)
class Detection:
    feature: str
    model_arn: str
    labels: tuple[Label, ...] = field(default_factory=tuple)
    adapter_applied: bool | None = None  # moderation only: False when an expired adapter was ignored
    # Moderation only: "adapter", or "base_model" when the answer carried no ProjectVersion (the
    # adapter expired or was deprecated, per the DetectModerationLabels reference).
    answered_by: str | None = None
    human_loop: dict[str, Any] | None = None  # the result's human_loop (human_loop.py), when asked for

    @property
    def top(self) -> Label | None:
        return self.labels[0] if self.labels else None


def _sorted(labels: list[Label], limit: int) -> tuple[Label, ...]:
    return tuple(sorted(labels, key=lambda label: label.confidence, reverse=True)[:limit])


class Detector:
    def __init__(self, rekognition_client: Any | None = None) -> None:
        self._client = rekognition_client

    client = aws.LazyClient("rekognition")

    def detect(
        self,
        image: ImageRef,
        *,
        feature: str,
        model_arn: str,
        min_confidence: float | None,
        max_results: int,
        human_loop_request: HumanLoopRequest | None = None,
    ) -> Detection:
        if not image.key.lower().endswith(IMAGE_SUFFIXES):
            raise BadImage("UnsupportedExtension", f"{image.key} does not end in {', '.join(IMAGE_SUFFIXES)}")
        try:
            if feature == FEATURE_CONTENT_MODERATION:
                return self._moderation(image, model_arn, min_confidence, max_results, human_loop_request)
            return self._custom_labels(image, model_arn, min_confidence, max_results)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "")
            if code in NOT_READY_ERRORS:
                raise ModelNotReady(f"{model_arn} is not ready: {message}") from error
            if code in THROTTLING_ERRORS:
                raise Throttled(f"{code}: {message}") from error
            if code in BAD_IMAGE_ADVICE:
                raise BadImage(code, message) from error
            raise

    def _custom_labels(
        self, image: ImageRef, model_arn: str, min_confidence: float | None, max_results: int
    ) -> Detection:
        request: dict[str, Any] = {
            "ProjectVersionArn": model_arn,
            "Image": {"S3Object": image.s3_object()},
            "MaxResults": max_results,
        }
        if min_confidence is not None:
            request["MinConfidence"] = min_confidence  # omitted: each label's assumed threshold applies
        response = self.client.detect_custom_labels(**request)
        labels = [
            Label(
                name=str(item["Name"]),
                confidence=float(item.get("Confidence", 0.0)),
                geometry=item.get("Geometry"),
            )
            for item in response.get("CustomLabels", [])
        ]
        return Detection(feature="CUSTOM_LABELS", model_arn=model_arn, labels=_sorted(labels, max_results))

    def _moderation(
        self,
        image: ImageRef,
        adapter_arn: str,
        min_confidence: float | None,
        max_results: int,
        loop: HumanLoopRequest | None,
    ) -> Detection:
        request: dict[str, Any] = {"Image": {"S3Object": image.s3_object()}, "ProjectVersion": adapter_arn}
        if min_confidence is not None:
            request["MinConfidence"] = min_confidence
        record: dict[str, Any] | None = None
        if loop is None:
            response = self.client.detect_moderation_labels(**request)
        else:
            try:
                response = self.client.detect_moderation_labels(**request, HumanLoopConfig=loop.config())
                record = human_loop.activation_record(loop, response.get("HumanLoopActivationOutput"))
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if not human_loop.is_name_in_use(
                    code, error.response.get("Error", {}).get("Message", ""), loop
                ):
                    raise
                # An earlier attempt for this image version started the loop: answer without one.
                response = self.client.detect_moderation_labels(**request)
                record = human_loop.already_started_record(loop)
        labels = [
            Label(
                name=str(item["Name"]),
                confidence=float(item.get("Confidence", 0.0)),
                parent=item.get("ParentName") or None,
            )
            for item in response.get("ModerationLabels", [])
        ]
        return Detection(
            feature=FEATURE_CONTENT_MODERATION,
            model_arn=adapter_arn,
            labels=_sorted(labels, max_results),
            adapter_applied=response.get("ProjectVersion") == adapter_arn,
            answered_by=ANSWERED_BY_ADAPTER if response.get("ProjectVersion") else ANSWERED_BY_BASE_MODEL,
            human_loop=record,
        )
