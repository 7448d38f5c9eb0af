"""Unit tests of the engine's pieces, without HTTP or AWS."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from autopilot.engine import errors
from autopilot.engine.arns import parse_dataset, parse_project, parse_version, version_arn
from autopilot.engine.faults import FaultInjector
from autopilot.engine.images import check_image, decode_for_detection, image_format
from autopilot.engine.learning.detector import Detection, iou, non_max_suppression
from autopilot.engine.learning.evaluation import best_threshold
from autopilot.engine.manifests import ManifestLineError, parse_line, parse_manifest
from autopilot.engine.pagination import page
from autopilot.engine.validation import validate_input
from tests.engine.imaging import classification_line, colour_image, detection_line, to_jpeg, to_png


class TestValidation:
    def test_decodes_blobs_and_keeps_valid_input(self) -> None:
        params = validate_input(
            "UpdateDatasetEntries",
            {
                "DatasetArn": "arn:aws:rekognition:us-east-1:123456789012:project/p/dataset/train/1",
                "Changes": {"GroundTruth": base64.b64encode(b"{}").decode()},
            },
        )
        assert params["Changes"]["GroundTruth"] == b"{}"

    @pytest.mark.parametrize(
        ("operation", "params", "code", "fragment"),
        [
            ("DescribeProjects", {"MaxResults": 101}, "ValidationException", "less than or equal to 100"),
            ("DescribeProjects", {"MaxResults": "ten"}, "InvalidParameterException", "integer"),
            ("CreateProject", {"ProjectName": "a b"}, "ValidationException", "regular expression"),
            ("CreateProject", {"ProjectName": "ok", "Feature": "X"}, "ValidationException", "enum"),
            ("CreateProject", {}, "InvalidParameterException", "ProjectName"),
            ("CreateProject", {"ProjectName": "ok", "Extra": 1}, "InvalidParameterException", "Extra"),
            (
                "DetectCustomLabels",
                {"ProjectVersionArn": "x" * 20, "Image": {}},
                "ValidationException",
                "pattern",
            ),
            (
                "UpdateDatasetEntries",
                {
                    "DatasetArn": "arn:aws:rekognition:us-east-1:123456789012:project/p/dataset/train/1",
                    "Changes": {"GroundTruth": "***"},
                },
                "InvalidParameterException",
                "base64",
            ),
        ],
    )
    def test_rejects(self, operation: str, params: dict[str, object], code: str, fragment: str) -> None:
        with pytest.raises(errors.EngineError) as info:
            validate_input(operation, params)
        assert info.value.code == code
        assert fragment in info.value.message

    def test_tag_patterns_with_unicode_classes(self) -> None:
        validate_input("CreateProject", {"ProjectName": "p", "Tags": {"équipe": "vision 1"}})
        with pytest.raises(errors.EngineError):
            validate_input("CreateProject", {"ProjectName": "p", "Tags": {"aws:x": "y"}})


class TestManifests:
    def test_classification_line(self) -> None:
        entry = parse_line(classification_line("s3://b/k.png", "cat"))
        assert (entry.source_ref, entry.labels, entry.labeled, entry.has_errors) == (
            "s3://b/k.png",
            ["cat"],
            True,
            False,
        )

    def test_several_labels(self) -> None:
        line = json.loads(classification_line("s3://b/k.png", "cat", attribute="label0"))
        line.update(json.loads(classification_line("s3://b/k.png", "indoor", attribute="label1")))
        assert parse_line(json.dumps(line)).labels == ["cat", "indoor"]

    def test_detection_line(self) -> None:
        entry = parse_line(detection_line("s3://b/k.png", [("cat", (10, 20, 30, 40))], (100, 200)))
        assert entry.boxes[0].ratios() == (0.1, 0.1, 0.3, 0.2)
        assert entry.is_detection

    @pytest.mark.parametrize(
        ("text", "code"),
        [
            ("{nope", "ERROR_INVALID_JSON_LINE"),
            ("[1]", "ERROR_INVALID_JSON_LINE"),
            ('{"label": 1}', "ERROR_MISSING_SOURCE_REF"),
            ('{"source-ref": "http://b/k.png"}', "ERROR_INVALID_SOURCE_REF"),
        ],
    )
    def test_terminal_errors(self, text: str, code: str) -> None:
        with pytest.raises(ManifestLineError) as info:
            parse_line(text)
        assert info.value.code == code

    def test_errors_sent_by_the_client_are_recomputed(self) -> None:
        line = json.loads(classification_line("s3://b/k.png", "cat"))
        line["errors"] = [{"code": "OLD", "message": "stale"}]
        entry = parse_line(json.dumps(line))
        assert "errors" not in entry.line and not entry.has_errors

    def test_attribute_without_metadata(self) -> None:
        entry = parse_line(json.dumps({"source-ref": "s3://b/k.png", "label": 1}))
        assert entry.line["errors"][0]["code"] == "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT"
        assert not entry.labeled

    def test_missing_class_map_id_and_confidence(self) -> None:
        line = json.loads(
            detection_line("s3://b/k.png", [("cat", (1, 1, 30, 30)), ("cat", (40, 40, 30, 30))], (100, 100))
        )
        line["bounding-box"]["annotations"][0]["class_id"] = 9
        line["bounding-box-metadata"]["objects"] = [{"confidence": 1}]
        entry = parse_line(json.dumps(line))
        codes = [a["errors"][0]["code"] for a in entry.line["bounding-box"]["annotations"]]
        assert codes == ["ERROR_MISSING_CLASS_MAP_ID", "ERROR_MISSING_BOUNDING_BOX_CONFIDENCE"]
        assert entry.boxes == []

    def test_manifest_counts_failures_by_line(self) -> None:
        first, second = classification_line("s3://b/1.png", "a"), classification_line("s3://b/2.png", "b")
        blob = f"{first}\n\nbad\n{second}\n".encode()
        entries, failures = parse_manifest(blob)
        assert len(entries) == 2
        assert [(n, f.code) for n, f in failures] == [(3, "ERROR_INVALID_JSON_LINE")]


class TestImages:
    def test_format_by_content(self) -> None:
        assert image_format(colour_image("red", 1)) == "PNG"
        assert image_format(to_jpeg(np.zeros((64, 64, 3)))) == "JPEG"
        assert image_format(b"GIF89a") is None

    @pytest.mark.parametrize(
        ("shape", "code"),
        [
            ((63, 100, 3), "ERROR_INVALID_IMAGE_DIMENSION"),
            ((64, 64 * 21, 3), "ERROR_INVALID_IMAGE_DIMENSION"),
        ],
    )
    def test_dimension_rules(self, shape: tuple[int, int, int], code: str) -> None:
        _, problem = check_image(to_png(np.zeros(shape)), inline=False)
        assert problem is not None and problem.code == code

    def test_detection_errors(self) -> None:
        with pytest.raises(errors.EngineError) as info:
            decode_for_detection(to_png(np.zeros((64, 5000, 3))), inline=True)
        assert info.value.code == "ImageTooLargeException"
        with pytest.raises(errors.EngineError) as info:
            decode_for_detection(b"\x89PNG\r\n\x1a\ngarbage", inline=True)
        assert info.value.code == "InvalidImageFormatException"
        assert decode_for_detection(to_jpeg(np.zeros((64, 80, 3))), inline=True).shape == (64, 80, 3)


class TestEvaluation:
    def test_threshold_between_positives_and_negatives(self) -> None:
        threshold, precision, recall, f1 = best_threshold(
            np.array([0.9, 0.8, 0.3, 0.1]), np.array([True, True, False, False]), 2
        )
        assert threshold == pytest.approx(0.55)
        assert (precision, recall, f1) == (1.0, 1.0, 1.0)

    def test_ties_are_not_split(self) -> None:
        threshold, precision, _, _ = best_threshold(np.array([0.7, 0.7]), np.array([True, False]), 1)
        assert threshold <= 0.7 and precision == 0.5

    def test_no_positives(self) -> None:
        assert best_threshold(np.array([0.4]), np.array([False]), 0)[3] == 0.0

    def test_nms_and_iou(self) -> None:
        assert iou((0, 0, 0.5, 0.5), (0, 0, 0.5, 0.5)) == 1.0
        assert iou((0, 0, 0.1, 0.1), (0.5, 0.5, 0.1, 0.1)) == 0.0
        kept = non_max_suppression(
            [
                Detection("a", 0.9, (0, 0, 0.5, 0.5)),
                Detection("a", 0.8, (0.05, 0, 0.5, 0.5)),
                Detection("b", 0.7, (0.5, 0.5, 0.2, 0.2)),
            ]
        )
        assert [(d.label, d.score) for d in kept] == [("a", 0.9), ("b", 0.7)]


class TestPaginationAndArns:
    def test_pages(self) -> None:
        items = list(range(5))
        first, token = page(items, {"MaxResults": 2}, "ctx")
        second, token2 = page(items, {"MaxResults": 2, "NextToken": token}, "ctx")
        assert (first, second) == ([0, 1], [2, 3])
        assert page(items, {"MaxResults": 2, "NextToken": token2}, "ctx") == ([4], None)
        with pytest.raises(errors.EngineError) as info:
            page(items, {"NextToken": token}, "other query")
        assert info.value.code == "InvalidPaginationTokenException"

    def test_arns(self) -> None:
        project = "arn:aws:rekognition:eu-west-1:123456789012:project/p.1/123"
        assert parse_project(project) == ("eu-west-1", "p.1")
        version = version_arn(project, "v-2", 456)
        assert version == "arn:aws:rekognition:eu-west-1:123456789012:project/p.1/version/v-2/456"
        assert parse_version(version).version_name == "v-2"
        assert (
            parse_dataset("arn:aws:rekognition:eu-west-1:123456789012:project/p.1/dataset/test/9")[2]
            == "TEST"
        )


class TestFaults:
    def test_counts_and_scoping(self) -> None:
        faults = FaultInjector()
        faults.throttle("DescribeProjects", count=2, project="p")
        assert faults.take("throttle", "DescribeProjects", "q") is None
        assert faults.take("throttle", "DescribeProjects", "p") is not None
        assert faults.take("throttle", "DescribeProjects", "p") is not None
        assert faults.take("throttle", "DescribeProjects", "p") is None

    def test_until_cleared(self) -> None:
        faults = FaultInjector()
        faults.fail_training(count=-1)
        for _ in range(3):
            assert faults.take("training_failed") is not None
        faults.clear()
        assert faults.take("training_failed") is None

    def test_rejects_unknown_kinds(self) -> None:
        with pytest.raises(ValueError):
            FaultInjector().from_json({"kind": "meteor"})
        with pytest.raises(ValueError):
            FaultInjector().from_json({"kind": "throttle", "when": "now"})
