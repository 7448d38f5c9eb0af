"""The report page from typed data alone: parsing of snapshot lines, the confusion matrix, thumbnails."""

from __future__ import annotations

import io

from PIL import Image

from autopilot.ops.report_data import (
    DataSection,
    Evaluation,
    KeptRejection,
    LabelRow,
    ReportData,
    ServingSection,
    parse_snapshot_line,
)
from autopilot.ops.report_render import render
from lambdas.serving.usage import Interval, LedgerEntry


def _png(side: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _classified(ref: str, truth: str, predicted: str, confidence: float) -> dict[str, object]:
    details = {
        "is-true-positive": truth == predicted,
        "is-false-positive": truth != predicted,
        "is-false-negative": False,
    }
    return {
        "source-ref": ref,
        "autopilot-label": 1,
        "autopilot-label-metadata": {"class-name": truth, "type": "groundtruth/image-classification"},
        "rekognition-custom-labels-evaluation-0": 1,
        "rekognition-custom-labels-evaluation-0-metadata": {
            "class-name": predicted,
            "confidence": confidence,
            "rekognition-custom-labels-evaluation-details": details,
        },
    }


def test_a_classification_report_counts_every_test_image_once_and_shows_each_mistake() -> None:
    # Given three test images, one of them a cat predicted as a dog
    lines = [
        _classified("s3://b/p/test/cat/1.png", "cat", "cat", 0.9),
        _classified("s3://b/p/test/cat/2.png", "cat", "dog", 0.7),
        _classified("s3://b/p/test/dog/3.png", "dog", "dog", 0.8),
    ]
    images = [parse_snapshot_line(line) for line in lines]
    evaluation = Evaluation(
        "v2",
        "RUNNING",
        "classification",
        0.83,
        0.83,
        0.83,
        [LabelRow("cat", 0.67, 1.0, 0.5, 0.5, 2), LabelRow("dog", 0.8, 0.5, 1.0, 0.4, 1)],
        images,
    )
    # Then the confusion matrix sums to the test set and names the mistake
    assert evaluation.confusion() == {("cat", "cat"): 1, ("cat", "dog"): 1, ("dog", "dog"): 1}
    report = ReportData(
        project="p",
        generated_at=1_800_000_000.0,
        evaluation=evaluation,
        previous=None,
        data=DataSection(
            labels={"TRAIN": {"cat": 5, "dog": 4}},
            stats={"TRAIN": {"TotalEntries": 9}},
            rejections=[KeptRejection("2027-01-15T08:00:00+00:00", "p/train/x y/a.gif", "not a PNG or JPEG")],
        ),
        serving=ServingSection(
            since=1_800_000_000.0 - 7 * 86400,
            until=1_800_000_000.0,
            intervals=[Interval(1_800_000_000.0 - 1800, 1_800_000_000.0 - 600, "v2", 2)],
            transitions=[
                LedgerEntry("RUNNING", 1_800_000_000.0 - 1800, "v2", 2, "1 image waiting"),
                LedgerEntry("STOPPED", 1_800_000_000.0 - 600, "v2", 2, "no work for 600 s (idle threshold)"),
            ],
            iu_hours=0.67,
            usd=2.67,
            detection_times=[1_800_000_000.0 - 1500 + 60 * n for n in range(4)],
        ),
        images={"s3://b/p/test/cat/2.png": _png()},
    )
    page = render(report)
    assert page.count("<svg") == 4  # F1 per label, confusion matrix, entries per label, serving
    assert "data-source-ref='s3://b/p/test/cat/2.png'><img src='data:image/png;base64," in page
    assert "FP dog 0.70" in page and "Wrong on the test set: 1 images" in page
    assert "<tr data-label='cat'><td>cat</td><td>0.670</td>" in page
    # The rejections kept from the last days, and why the model was started and stopped
    assert "<td>p/train/x y/a.gif</td><td>not a PNG or JPEG</td>" in page
    assert "<td>started</td><td>v2</td><td>2</td><td>1 image waiting</td>" in page
    assert "<td>stopped</td><td>v2</td><td>2</td><td>no work for 600 s (idle threshold)</td>" in page


def test_detection_snapshot_lines_give_boxes_in_ratios() -> None:
    line = {
        "source-ref": "s3://b/p/test/scene.png",
        "bounding-box": {"annotations": [{"class_id": 0, "left": 10, "top": 20, "width": 30, "height": 40}]},
        "bounding-box-metadata": {"class-map": {"0": "red"}, "type": "groundtruth/object-detection"},
        "rekognition-custom-labels-evaluation": {
            "annotations": [{"class_id": 0, "left": 64, "top": 0, "width": 32, "height": 64}],
            "image_size": [{"width": 128, "height": 128, "depth": 3}],
        },
        "rekognition-custom-labels-evaluation-metadata": {
            "class-map": {"0": "red"},
            "objects": [
                {
                    "confidence": 0.4,
                    "rekognition-custom-labels-evaluation-details": {"is-false-positive": True},
                }
            ],
        },
    }
    image = parse_snapshot_line(line)
    assert image.truth == ["red"] and image.wrong
    (judged,) = image.judged
    assert judged.outcome == "FP" and judged.box == (0.5, 0.0, 0.25, 0.5)
