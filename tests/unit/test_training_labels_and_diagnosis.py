"""Per-label gate rules and the explanation of a failed training (pure functions)."""

from __future__ import annotations

import hashlib
import json

import pytest

from lambdas.training import diagnosis
from lambdas.training.gate import (
    PROMOTE,
    REJECT,
    GateDecision,
    LabelScore,
    apply_label_rules,
    check_labels,
    evaluation_set_digest,
    label_scores,
    label_table,
)

# An evaluation summary in the documented shape (Developer Guide, "Accessing the model summary file").
SUMMARY = {
    "Version": 1,
    "AggregatedEvaluationResults": {"F1Score": 0.8},
    "LabelEvaluationResults": [
        {
            "Label": "cat",
            "Metrics": {"F1Score": 0.95, "Precision": 1.0, "Recall": 0.9, "Threshold": 0.41},
            "NumberOfTestingImages": 20,
        },
        {
            "Label": "dog",
            "Metrics": {"F1Score": 0.6, "Precision": 0.5, "Recall": 0.75, "Threshold": 0.3},
            "NumberOfTestingImages": 8,
        },
    ],
}


def scores(**f1: float) -> dict[str, LabelScore]:
    return {label: LabelScore(label, value) for label, value in f1.items()}


def test_label_scores_read_the_label_evaluation_results() -> None:
    parsed = label_scores(SUMMARY)
    assert parsed["cat"] == LabelScore("cat", 0.95, 1.0, 0.9, 0.41, 20)
    assert parsed["dog"].f1 == 0.6


def test_a_malformed_summary_is_named() -> None:
    with pytest.raises(ValueError, match="no LabelEvaluationResults"):
        label_scores({"Version": 1})
    with pytest.raises(ValueError, match="malformed label result"):
        label_scores({"LabelEvaluationResults": [{"Label": "cat", "Metrics": {}}]})


def test_every_label_below_its_floor_fails_and_a_missing_label_too() -> None:
    failures = check_labels(
        scores(cat=0.95, dog=0.6), None, floors={"dog": 0.9, "cat": 0.9, "bird": 0.5}, max_drop=None
    )
    assert [(f.label, f.f1, f.floor) for f in failures] == [("bird", None, 0.5), ("dog", 0.6, 0.9)]
    assert failures[1].reason == "label 'dog' F1 0.6000 is below its floor 0.9000"
    assert "no evaluation result" in failures[0].reason


def test_a_drop_beyond_the_setting_fails_and_an_equal_drop_passes() -> None:
    production = scores(cat=0.95, dog=0.9)
    failures = check_labels(scores(cat=0.85, dog=0.5), production, floors={}, max_drop=0.1)
    assert [(f.label, f.production_f1, f.f1) for f in failures] == [("dog", 0.9, 0.5)]
    assert (
        failures[0].reason
        == "label 'dog' F1 fell from 0.9000 to 0.5000 (drop 0.4000 > max_label_f1_drop 0.1000)"
    )
    assert check_labels(scores(cat=0.85, dog=0.9), production, floors={}, max_drop=None) == []


def test_label_failures_turn_a_promotion_into_a_rejection_listing_them_all() -> None:
    promote = GateDecision(PROMOTE, "F1 0.9 beats production", 0.9, 0.8)
    failures = check_labels(scores(a=0.1, b=0.2), scores(a=0.9, b=0.9), floors={}, max_drop=0.1)
    decision = apply_label_rules(promote, failures)
    assert decision.decision == REJECT and len(decision.label_failures) == 2
    assert decision.reason.startswith("2 label(s) failed the per-label gate: label 'a'")
    assert apply_label_rules(promote, []) is promote


def test_label_table_puts_production_figures_next_to_the_new_ones() -> None:
    rows = label_table(label_scores(SUMMARY), scores(cat=0.9, bird=0.7))
    assert [(r["label"], r["f1"], r["production_f1"]) for r in rows] == [
        ("bird", None, 0.7),
        ("cat", 0.95, 0.9),
        ("dog", 0.6, None),
    ]


def _line(ref: str, label: str, date: str) -> str:
    return json.dumps(
        {
            "source-ref": ref,
            "a": 1,
            "a-metadata": {"class-name": label, "creation-date": date, "confidence": 1},
        }
    )


def test_the_evaluation_set_digest_ignores_order_and_metadata_but_not_labels() -> None:
    one = [_line("s3://b/1.png", "cat", "2026-01-01"), _line("s3://b/2.png", "dog", "2026-01-01")]
    reordered = [_line("s3://b/2.png", "dog", "2026-02-02"), _line("s3://b/1.png", "cat", "2026-02-02"), ""]
    relabeled = [_line("s3://b/1.png", "dog", "2026-01-01"), _line("s3://b/2.png", "dog", "2026-01-01")]
    assert evaluation_set_digest(one) == evaluation_set_digest(reordered)
    assert evaluation_set_digest(one)[1] == 2
    assert evaluation_set_digest(one)[0] != evaluation_set_digest(relabeled)[0]


# --- failures explained -------------------------------------------------------------------------
MANIFEST_SUMMARY = {
    "errors": [],
    "statistics": {
        "training": {
            "use_case": "NOT_DETERMINED",
            "total_json_lines": 301,
            "valid_json_lines": 146,
            "invalid_json_lines": 155,
            "ignored_json_lines": 0,
            "errors": [
                {
                    "code": "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST",
                    "message": "The manifest file contains too many invalid rows.",
                }
            ],
            "error_json_line_indices": [15, 16],
        },
        "testing": {
            "use_case": "NOT_DETERMINED",
            "total_json_lines": 15,
            "valid_json_lines": 13,
            "invalid_json_lines": 2,
            "ignored_json_lines": 0,
            "errors": [],
            "error_json_line_indices": [13, 15],
        },
    },
}

# Error placements of the Guide's "JSON line error format": image, annotation, metadata.
VALIDATION_LINES = [
    json.dumps({"source-ref": "s3://bucket/ok.jpg", "bounding-box": {"annotations": []}}),
    json.dumps(
        {
            "source-ref": "s3://bucket/Manifests/images/199940-1791.jpg",
            "bounding-box": {
                "image_size": [{"width": 3000, "height": 3000, "depth": 3}],
                "annotations": [
                    {
                        "class_id": 1,
                        "top": 0,
                        "left": 0,
                        "width": 1,
                        "height": 1,
                        "errors": [
                            {
                                "code": "ERROR_BOUNDING_BOX_TOO_SMALL",
                                "message": "The height and width of the bounding box is too small.",
                            }
                        ],
                    }
                ],
            },
            "bounding-box-metadata": {
                "objects": [{"confidence": 1}],
                "class-map": {"1": "Echo Dot"},
                "errors": [
                    {"code": "ERROR_MISSING_CLASS_MAP_ID", "message": "One of more class ids is missing."}
                ],
            },
        }
    ),
    json.dumps(
        {
            "source-ref": "s3://bucket/broken.png",
            "errors": [{"code": "ERROR_INVALID_IMAGE", "message": "The image is invalid."}],
        }
    ),
    "{not json",
]


def test_the_manifest_summary_gives_terminal_errors_and_line_counts() -> None:
    report = diagnosis.ValidationReport()
    diagnosis.read_manifest_summary(MANIFEST_SUMMARY, report)
    assert report.manifest_errors == [
        {
            "scope": "training",
            "code": "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST",
            "message": "The manifest file contains too many invalid rows.",
        }
    ]
    assert report.statistics["training"]["invalid_json_lines"] == 155
    assert report.statistics["testing"]["total_json_lines"] == 15


def test_validation_manifests_give_counts_per_code_and_the_first_lines_in_error() -> None:
    report = diagnosis.ValidationReport()
    diagnosis.read_validation_manifest("training", VALIDATION_LINES, report)
    assert report.error_counts == {
        "ERROR_BOUNDING_BOX_TOO_SMALL": 1,
        "ERROR_MISSING_CLASS_MAP_ID": 1,
        "ERROR_INVALID_IMAGE": 1,
        "ERROR_INVALID_JSON_LINE": 1,
    }
    first = [line.to_dict() for line in report.first_lines_in_error]
    assert first[0] == {
        "dataset": "training",
        "line": 1,
        "source-ref": "s3://bucket/Manifests/images/199940-1791.jpg",
        "code": "ERROR_BOUNDING_BOX_TOO_SMALL",
        "message": "The height and width of the bounding box is too small.",
    }
    assert {(line["line"], line["code"]) for line in first} == {
        (1, "ERROR_MISSING_CLASS_MAP_ID"),
        (1, "ERROR_BOUNDING_BOX_TOO_SMALL"),
        (2, "ERROR_INVALID_IMAGE"),
    }


def test_only_the_first_lines_are_quoted_but_every_error_is_counted() -> None:
    lines = [
        json.dumps(
            {"source-ref": f"s3://b/{i}.png", "errors": [{"code": "ERROR_INVALID_IMAGE", "message": "x"}]}
        )
        for i in range(25)
    ]
    report = diagnosis.ValidationReport()
    diagnosis.read_validation_manifest("testing", lines, report)
    assert report.error_counts == {"ERROR_INVALID_IMAGE": 25}
    assert len(report.first_lines_in_error) == diagnosis.FIRST_LINES
    diagnosis.read_manifest_summary(MANIFEST_SUMMARY, report)
    assert report.sentence() == (
        "training ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST; "
        "155 invalid training lines, 2 invalid testing lines; ERROR_INVALID_IMAGE x25; "
        "first: testing line 0 s3://b/0.png ERROR_INVALID_IMAGE"
    )


def test_a_failed_training_is_explained_from_s3_and_a_missing_file_is_named_not_raised() -> None:
    import boto3
    from moto import mock_aws

    from lambdas.training.outputs import TrainingOutputs, explain_training_failure

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bucket-b")
        s3.put_object(
            Bucket="bucket-b", Key="out/manifest_summary.json", Body=json.dumps(MANIFEST_SUMMARY).encode()
        )
        s3.put_object(Bucket="bucket-b", Key="out/training.json", Body="\n".join(VALIDATION_LINES).encode())

        def asset(key: str) -> dict[str, object]:
            return {"Assets": [{"GroundTruthManifest": {"S3Object": {"Bucket": "bucket-b", "Name": key}}}]}

        description = {
            "Status": "TRAINING_FAILED",
            "ManifestSummary": {"S3Object": {"Bucket": "bucket-b", "Name": "out/manifest_summary.json"}},
            "TrainingDataResult": {"Validation": asset("out/training.json")},
            "TestingDataResult": {"Validation": asset("out/gone.json")},
        }
        report = explain_training_failure(description, TrainingOutputs(s3))
    assert report.manifest_errors[0]["code"] == "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST"
    assert report.error_counts["ERROR_INVALID_IMAGE"] == 1
    (missing,) = report.unavailable
    assert missing.startswith("s3://bucket-b/out/gone.json: ") and "NoSuchKey" in missing
    # a version without validation results explains nothing
    assert explain_training_failure({"Status": "TRAINING_FAILED"}, TrainingOutputs(object())).empty


def test_the_evaluation_set_digest_ignores_each_model_s_judged_predictions() -> None:
    # Given the same TEST lines in two testing snapshots, judged differently by two versions
    def judged(ref: str, label: str, predicted: str, confidence: float) -> str:
        line = json.loads(_line(ref, label, "2026-01-01"))
        line["rekognition-custom-labels-evaluation-0"] = 1
        line["rekognition-custom-labels-evaluation-0-metadata"] = {
            "class-name": predicted,
            "confidence": confidence,
            "rekognition-custom-labels-evaluation-details": {"is-true-positive": label == predicted},
        }
        return json.dumps(line)

    first = [judged("s3://b/1.png", "cat", "cat", 0.9), judged("s3://b/2.png", "dog", "dog", 0.8)]
    second = [judged("s3://b/1.png", "cat", "dog", 0.6), judged("s3://b/2.png", "dog", "dog", 0.7)]
    # Then they are the same TEST set
    assert evaluation_set_digest(first) == evaluation_set_digest(second)


# --- exact results of the per-label gate (written against the mutation run, docs/testing.md) ------
def test_summary_errors_are_the_full_messages_and_quote_200_characters_of_the_entry() -> None:
    with pytest.raises(ValueError) as missing:
        label_scores({"Version": 1})
    assert str(missing.value) == "the evaluation summary has no LabelEvaluationResults list"
    entry = {"Label": "x" * 300, "Metrics": {}}
    with pytest.raises(ValueError) as malformed:
        label_scores({"LabelEvaluationResults": [entry]})
    quoted = '{"Label": "' + "x" * 189  # the first 200 characters of the entry as JSON
    assert str(malformed.value) == f"the evaluation summary holds a malformed label result: {quoted}"


def test_a_label_result_without_a_test_image_count_has_none() -> None:
    parsed = label_scores({"LabelEvaluationResults": [{"Label": "cat", "Metrics": {"F1Score": 1}}]})
    assert parsed == {"cat": LabelScore("cat", 1.0)}


def test_an_f1_exactly_at_its_floor_passes() -> None:
    assert check_labels(scores(cat=0.9, dog=0.5), None, floors={"cat": 0.9, "dog": 0.5}, max_drop=None) == []
    # an F1 short of its floor by no more than the float tolerance (1e-9) is at the floor
    assert check_labels(scores(cat=0.0), None, floors={"cat": 1e-9}, max_drop=None) == []


def test_the_drop_rule_compares_only_labels_both_versions_have_and_keeps_the_floor() -> None:
    # a label new in this version (bird) or gone from it (fish) has no drop
    production = scores(dog=0.9, fish=0.9)
    failures = check_labels(scores(dog=0.6, bird=0.1), production, floors={"dog": 0.5}, max_drop=0.1)
    assert [failure.to_dict() for failure in failures] == [
        {
            "label": "dog",
            "reason": "label 'dog' F1 fell from 0.9000 to 0.6000 (drop 0.3000 > max_label_f1_drop 0.1000)",
            "f1": 0.6,
            "floor": 0.5,
            "production_f1": 0.9,
        }
    ]
    # a drop within the float tolerance (1e-9) of the setting is no drop
    assert check_labels(scores(dog=0.0), scores(dog=1e-9), floors={}, max_drop=0.0) == []


def test_label_failures_keep_the_figures_and_are_joined_by_semicolons() -> None:
    failures = check_labels(scores(a=0.1, b=0.2), None, floors={"a": 0.5, "b": 0.5}, max_drop=None)
    reasons = "label 'a' F1 0.1000 is below its floor 0.5000; label 'b' F1 0.2000 is below its floor 0.5000"
    promoted = apply_label_rules(GateDecision(PROMOTE, "better", 0.9, 0.8), failures)
    assert promoted == GateDecision(
        REJECT, f"2 label(s) failed the per-label gate: {reasons}", 0.9, 0.8, tuple(failures)
    )
    rejected = apply_label_rules(GateDecision(REJECT, "F1 0.4 is below the floor", 0.4, 0.8), failures)
    assert rejected == GateDecision(
        REJECT, f"F1 0.4 is below the floor; per-label gate: {reasons}", 0.4, 0.8, tuple(failures)
    )


def test_label_table_rows_are_complete() -> None:
    rows = label_table(label_scores(SUMMARY), scores(dog=0.7, bird=0.5))
    assert rows == [
        {
            "label": "bird",
            "f1": None,
            "precision": None,
            "recall": None,
            "threshold": None,
            "test_images": None,
            "production_f1": 0.5,
        },
        {
            "label": "cat",
            "f1": 0.95,
            "precision": 1.0,
            "recall": 0.9,
            "threshold": 0.41,
            "test_images": 20,
            "production_f1": None,
        },
        {
            "label": "dog",
            "f1": 0.6,
            "precision": 0.5,
            "recall": 0.75,
            "threshold": 0.3,
            "test_images": 8,
            "production_f1": 0.7,
        },
    ]


def test_the_evaluation_set_digest_is_the_sha256_of_the_sorted_canonical_lines() -> None:
    # Given an object localization line (keys out of order, validation errors, a non-object
    # metadata value), a blank line, and an image-level line
    boxes = {
        "source-ref": "s3://b/2.png",
        "bounding-box-metadata": {
            "class-map": {"0": "cat"},
            "type": "groundtruth/object-detection",
            "creation-date": "2026-01-01",
        },
        "bounding-box": {"image_size": [{"width": 4, "height": 4}], "annotations": [{"class_id": 0}]},
        "errors": [{"code": "ERROR_X"}],
        "note-metadata": "kept out",
    }
    level = {"source-ref": "s3://b/1.png", "a": 1, "a-metadata": {"class-name": "dog", "confidence": 1}}
    digest, count = evaluation_set_digest([json.dumps(boxes), "  ", json.dumps(level)])
    # Then the digest covers the images and labels only, one canonical line each, in sorted order
    canonical = (
        '{"a": 1, "a-metadata": {"class-name": "dog"}, "source-ref": "s3://b/1.png"}\n'
        '{"bounding-box": {"annotations": [{"class_id": 0}], "image_size": [{"height": 4, "width": 4}]}, '
        '"bounding-box-metadata": {"class-map": {"0": "cat"}}, "source-ref": "s3://b/2.png"}'
    )
    assert (digest, count) == (hashlib.sha256(canonical.encode()).hexdigest(), 2)
