"""Classifies one image version end to end: model lookup, detection, result delivery, review copy.

`classify` raises ModelNotReady / Throttled when the image must wait; everything else ends in a
delivered result (CLASSIFIED, NO_LABEL or ERROR). The handler wraps it in Powertools idempotency
keyed on the image version, so redeliveries deliver nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from lambdas.common.constants import ANSWERED_BY_BASE_MODEL, FEATURE_CUSTOM_LABELS
from lambdas.common.production import ProductionRecord
from lambdas.common.settings import AppSettings, ProjectSettings, UnknownProjectError
from lambdas.detection.detect import BadImage, Detector, ImageRef, NoProductionVersion
from lambdas.detection.human_loop import HumanLoopRequest
from lambdas.detection.results import ResultSink, detection_result, error_result
from lambdas.detection.review import needs_review, review_key

logger = Logger(child=True)


def human_loop_request(image: ImageRef, project: ProjectSettings) -> HumanLoopRequest | None:
    """The A2I human loop to ask for, when the project configures a flow definition."""
    if project.human_loop_flow_definition_arn is None:
        return None
    return HumanLoopRequest(
        name=image.human_loop_name(),
        flow_definition_arn=project.human_loop_flow_definition_arn,
        content_classifiers=tuple(project.human_loop_content_classifiers),
    )


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
        loop = human_loop_request(image, project)
        try:
            detection = self.detector.detect(
                image,
                feature=project.feature,
                model_arn=record.version_arn,
                min_confidence=project.min_confidence,
                max_results=project.max_results,
                **({"human_loop_request": loop} if loop is not None else {}),
            )
        except BadImage as error:
            result = error_result(
                image, error, feature=project.feature, model_arn=record.version_arn, detected_at=now
            )
        else:
            result = detection_result(
                image, detection, min_confidence=project.min_confidence, detected_at=now
            )
            if detection.answered_by == ANSWERED_BY_BASE_MODEL:
                logger.warning(
                    "the adapter did not answer: the base moderation model did (the adapter expired or "
                    "was deprecated); train and promote a new adapter",
                    extra={"project": image.project, "adapter": record.version_arn},
                )
            if needs_review(result["status"], result["confidence"], project.review_confidence):
                target = review_key(image)
                self.sink.copy_to_review(image, target)
                result["review_key"] = target
        self.sink.deliver(image, result)
        return result
