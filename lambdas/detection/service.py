"""Classifies one image version end to end: model lookup, detection, result delivery, review copy.

`classify` raises ModelNotReady / Throttled when the image must wait; everything else ends in a
delivered result (CLASSIFIED, NO_LABEL or ERROR). The handler wraps it in Powertools idempotency
keyed on the image version, so redeliveries deliver nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lambdas.common.constants import FEATURE_CUSTOM_LABELS
from lambdas.common.production import ProductionRecord
from lambdas.common.settings import AppSettings, UnknownProjectError
from lambdas.detection.detect import BadImage, Detector, ImageRef, NoProductionVersion
from lambdas.detection.results import ResultSink, detection_result, error_result
from lambdas.detection.review import needs_review, review_key


@dataclass
class DetectionService:
    settings: AppSettings
    production: Callable[[str], ProductionRecord | None]
    detector: Detector
    sink: ResultSink

    def classify(self, image: ImageRef, *, now: float) -> dict[str, Any]:
        try:
            project = self.settings.project(image.project)
        except UnknownProjectError as error:
            result = error_result(
                image,
                BadImage("ProjectNotConfigured", str(error), advice="add the project to cdk.json and deploy"),
                feature=FEATURE_CUSTOM_LABELS,
                model_arn=None,
                detected_at=now,
            )
            self.sink.deliver(image, result)
            return result

        record = self.production(image.project)
        if record is None:
            raise NoProductionVersion(
                f"project {image.project} has no production version yet; the image waits for a promotion"
            )
        try:
            detection = self.detector.detect(
                image,
                feature=project.feature,
                model_arn=record.version_arn,
                min_confidence=project.min_confidence,
                max_results=project.max_results,
            )
        except BadImage as error:
            result = error_result(
                image, error, feature=project.feature, model_arn=record.version_arn, detected_at=now
            )
        else:
            result = detection_result(
                image, detection, min_confidence=project.min_confidence, detected_at=now
            )
            if needs_review(result["status"], result["confidence"], project.review_confidence):
                target = review_key(image)
                self.sink.copy_to_review(image, target)
                result["review_key"] = target
        self.sink.deliver(image, result)
        return result
