"""DetectionService with fakes: which result each situation delivers, and when an image waits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from lambdas.common.production import ProductionRecord
from lambdas.common.settings import AppSettings, ProjectSettings
from lambdas.detection.detect import BadImage, Detection, ImageRef, Label, NoProductionVersion
from lambdas.detection.service import DetectionService

VERSION = "arn:aws:rekognition:us-east-1:123456789012:project/digits/version/v1/1"
SETTINGS = AppSettings(projects={"digits": ProjectSettings(review_confidence=60.0, min_confidence=None)})
RECORD = ProductionRecord("digits", VERSION, "v1", 0.9, "2026-11-01T00:00:00+00:00")


@dataclass
class FakeDetector:
    answer: Detection | Exception
    calls: list[dict[str, Any]] = field(default_factory=list)

    def detect(self, image: ImageRef, **kwargs: Any) -> Detection:
        self.calls.append(kwargs)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@dataclass
class FakeSink:
    delivered: list[dict[str, Any]] = field(default_factory=list)
    reviewed: list[str] = field(default_factory=list)

    def copy_to_review(self, image: ImageRef, key: str) -> None:
        self.reviewed.append(key)

    def deliver(self, image: ImageRef, result: dict[str, Any]) -> None:
        self.delivered.append(result)


def service(answer: Detection | Exception, record: ProductionRecord | None = RECORD) -> DetectionService:
    return DetectionService(
        settings=SETTINGS,
        production=lambda project: record,
        detector=FakeDetector(answer),  # type: ignore[arg-type]
        sink=FakeSink(),  # type: ignore[arg-type]
    )


IMAGE = ImageRef("bucket", "digits/inference/a.png", "v1", "e")


def test_confident_result_is_delivered_without_review() -> None:
    svc = service(Detection("CUSTOM_LABELS", VERSION, (Label("3", 97.0),)))
    result = svc.classify(IMAGE, now=0.0)
    assert result["status"] == "CLASSIFIED"
    assert svc.sink.delivered == [result]  # type: ignore[attr-defined]
    assert svc.sink.reviewed == []  # type: ignore[attr-defined]
    assert svc.detector.calls == [  # type: ignore[attr-defined]
        {"feature": "CUSTOM_LABELS", "model_arn": VERSION, "min_confidence": None, "max_results": 10}
    ]


def test_low_confidence_goes_to_review() -> None:
    svc = service(Detection("CUSTOM_LABELS", VERSION, (Label("3", 41.0),)))
    result = svc.classify(IMAGE, now=0.0)
    assert result["review_key"] == "digits/review/a.png"
    assert svc.sink.reviewed == ["digits/review/a.png"]  # type: ignore[attr-defined]


def test_bad_image_is_an_error_result_not_a_retry() -> None:
    svc = service(BadImage("InvalidImageFormatException", "not an image"))
    result = svc.classify(IMAGE, now=0.0)
    assert result["status"] == "ERROR"
    assert result["error"]["code"] == "InvalidImageFormatException"
    assert svc.sink.reviewed == []  # type: ignore[attr-defined]


def test_unknown_project_is_an_error_result_naming_the_fix() -> None:
    svc = service(Detection("CUSTOM_LABELS", VERSION, ()))
    result = svc.classify(ImageRef("bucket", "cats/inference/a.png"), now=0.0)
    assert result["error"]["code"] == "ProjectNotConfigured"
    assert "cdk.json" in result["error"]["action"]


def test_no_production_version_makes_the_image_wait() -> None:
    svc = service(Detection("CUSTOM_LABELS", VERSION, ()), record=None)
    with pytest.raises(NoProductionVersion, match="digits"):
        svc.classify(IMAGE, now=0.0)
    assert svc.sink.delivered == []  # type: ignore[attr-defined]
