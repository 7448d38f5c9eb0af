"""DetectCustomLabels and DetectModerationLabels (with a custom adapter), served from trained models."""

from __future__ import annotations

from typing import Any

import numpy as np

from autopilot.engine import adapters, errors
from autopilot.engine.backend import Engine
from autopilot.engine.images import decode_for_detection
from autopilot.engine.learning.training import Prediction, TrainedModel
from autopilot.engine.moderation import BASE_MODEL_VERSION, CONTENT_MODERATION, CUSTOM_LABELS, placement
from autopilot.engine.registry import operation
from autopilot.engine.transitions import refresh

DEFAULT_MODERATION_CONFIDENCE = 50.0


def _image(engine: Engine, image: dict[str, Any]) -> np.ndarray:
    data = image.get("Bytes")
    s3_object = image.get("S3Object")
    if (data is None) == (s3_object is None):
        raise errors.invalid_parameter("Image must have exactly one of Bytes or S3Object.")
    if data is not None:
        return decode_for_detection(data, inline=True)
    assert s3_object is not None
    if "Bucket" not in s3_object or "Name" not in s3_object:
        raise errors.invalid_parameter("Image.S3Object needs a Bucket and a Name.")
    blob = engine.read_s3_object(s3_object, detail=False)
    return decode_for_detection(blob, inline=False)


def _model(engine: Engine, arn: str, feature: str) -> TrainedModel:
    with engine.lock:
        refresh(engine)
        _, version = engine.version_by_arn(arn)
        if version.feature != feature:
            if feature == CUSTOM_LABELS:
                raise errors.invalid_parameter(
                    "This version is a content-moderation adapter; "
                    "use DetectModerationLabels with ProjectVersion."
                )
            raise errors.invalid_parameter(
                "ProjectVersion must be an adapter of a CONTENT_MODERATION project."
            )
        if feature == CUSTOM_LABELS and version.status != "RUNNING":
            raise errors.not_ready(
                f"ProjectVersion arn: {arn} is not ready (status {version.status}); "
                "start it and wait for RUNNING."
            )
        if feature == CONTENT_MODERATION and version.status != "TRAINING_COMPLETED":
            raise errors.not_ready(f"The adapter {arn} is {version.status}; it must be TRAINING_COMPLETED.")
        model = engine.model_for(arn)
    if model is None:
        raise errors.internal(f"The trained model of {arn} is missing from the engine's store.")
    return model


def _select(
    predictions: list[Prediction], model: TrainedModel, min_confidence: float | None
) -> list[Prediction]:
    if min_confidence is None:
        return [p for p in predictions if p.confidence >= model.thresholds.get(p.label, 0.5) * 100]
    return [p for p in predictions if p.confidence >= min_confidence]


@operation("DetectCustomLabels", locked=False, mutates=False)
def detect_custom_labels(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    model = _model(engine, params["ProjectVersionArn"], CUSTOM_LABELS)
    rgb = _image(engine, params["Image"])
    chosen = sorted(
        _select(model.predict(rgb), model, params.get("MinConfidence")), key=lambda p: -p.confidence
    )
    limit = params.get("MaxResults")
    if limit is not None:
        chosen = chosen[:limit]
    labels = []
    for prediction in chosen:
        label: dict[str, Any] = {"Name": prediction.label, "Confidence": prediction.confidence}
        if prediction.box is not None:
            left, top, width, height = prediction.box
            label["Geometry"] = {
                "BoundingBox": {
                    "Width": round(width, 6),
                    "Height": round(height, 6),
                    "Left": round(left, 6),
                    "Top": round(top, 6),
                }
            }
        labels.append(label)
    return {"CustomLabels": labels}


@operation("DetectModerationLabels", locked=False, mutates=False)
def detect_moderation_labels(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    arn = params.get("ProjectVersion")
    if arn is None:
        raise errors.invalid_parameter(
            "This offline engine has no base content-moderation model: DetectModerationLabels works "
            "only with ProjectVersion set to the ARN of an adapter trained here "
            "(a CONTENT_MODERATION project)."
        )
    model = _model(engine, arn, CONTENT_MODERATION)
    rgb = _image(engine, params["Image"])
    minimum = params.get("MinConfidence", DEFAULT_MODERATION_CONFIDENCE)
    project = arn.split(":project/", 1)[-1].split("/", 1)[0]
    expired = engine.faults.take("adapter_expired", "DetectModerationLabels", project) is not None
    # An expired adapter: the base model answers and ProjectVersion is left out (API reference). No
    # base model exists offline, so the simulated one finds no unsafe content.
    predictions = [] if expired else adapters.unsafe(model.predict(rgb))
    chosen = sorted((p for p in predictions if p.confidence >= minimum), key=lambda p: -p.confidence)
    labels = []
    for prediction in chosen:
        parent, level = placement(prediction.label)
        labels.append(
            {
                "Confidence": prediction.confidence,
                "Name": prediction.label,
                "ParentName": parent,
                "TaxonomyLevel": level,
            }
        )
    result: dict[str, Any] = {
        "ModerationLabels": labels,
        "ModerationModelVersion": BASE_MODEL_VERSION,
        "ContentTypes": [],
    }
    if not expired:
        result["ProjectVersion"] = arn
    loop = params.get("HumanLoopConfig")
    if loop is not None:
        result["HumanLoopActivationOutput"] = adapters.human_loop_output(
            loop, predictions, engine.config.human_loop_band, region, engine.config.account_id
        )
    return result
