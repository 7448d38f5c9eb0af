"""What training writes to OutputConfig: the output manifests, the evaluation summary and the
validation results (Custom Labels Guide, "Getting the validation results" and "Accessing the summary
file and evaluation manifest snapshot")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from autopilot.engine.backend import Engine
from autopilot.engine.learning.snapshot import snapshot_blob
from autopilot.engine.learning.training import TOO_MANY_INVALID_ROWS, TrainingReport
from autopilot.engine.manifests import Entry
from autopilot.engine.state import Project, Version


def _s3_uri_asset(bucket: str, key: str) -> dict[str, Any]:
    return {"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": key}}}


def _output_key(version: Version, name: str) -> str:
    prefix = version.output_config.get("S3KeyPrefix") or ""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return f"{prefix}{name}"


def _manifest_blob(entries: list[Entry]) -> bytes:
    return ("\n".join(e.json_line() for e in entries) + "\n").encode()


def write_outputs(
    engine: Engine,
    project: Project,
    version: Version,
    report: TrainingReport,
    train_entries: list[Entry],
    test_entries: list[Entry],
    adapter: bool = False,
) -> dict[str, Any]:
    """Writes the outputs of a successful training; adapters' testing manifest is the test split's
    adapter lines (the Custom Labels snapshot attributes do not apply to them)."""
    bucket = version.output_config["S3Bucket"]
    stem = f"{project.name}.{version.name}"
    train_key = _output_key(version, f"{stem}/training.manifest")
    test_key = _output_key(version, f"{stem}/testing.manifest")
    engine.put_object(bucket, train_key, _manifest_blob(train_entries), "application/x-ndjson")
    summary_key = _output_key(version, f"EvaluationSummary-{project.name}-{version.name}.json")
    ended = datetime.now(UTC).isoformat(timespec="seconds")
    # The testing snapshot carries the model's judged predictions ("Evaluation manifest snapshot").
    snapshot = (
        _manifest_blob(test_entries) if adapter else snapshot_blob(test_entries, report.evaluations, ended)
    )
    engine.put_object(bucket, test_key, snapshot, "application/x-ndjson")
    aggregated: dict[str, Any] = {
        "F1Score": round(report.f1, 6),
        "Precision": _mean([m.precision for m in report.label_metrics if m.test_images]),
        "Recall": _mean([m.recall for m in report.label_metrics if m.test_images]),
    }
    if report.confusion:
        aggregated["ConfusionMatrix"] = report.confusion
    if report.average_precision is not None:
        aggregated["AveragePrecision"] = round(report.average_precision, 6)
        aggregated["AverageRecall"] = round(report.average_recall or 0.0, 6)
    summary = {
        "Version": 1,
        "AggregatedEvaluationResults": aggregated,
        "EvaluationDetails": {
            "EvaluationEndTimestamp": ended,
            "Labels": [m.label for m in report.label_metrics],
            "NumberOfTestingImages": report.testing_images,
            "NumberOfTrainingImages": report.training_images,
            "ProjectVersionArn": version.arn,
        },
        "LabelEvaluationResults": [
            {
                "Label": m.label,
                "Metrics": {
                    "F1Score": round(m.f1, 6),
                    "Precision": round(m.precision, 6),
                    "Recall": round(m.recall, 6),
                    "Threshold": round(m.threshold, 6),
                },
                "NumberOfTestingImages": m.test_images,
            }
            for m in sorted(report.label_metrics, key=lambda m: (-m.f1, m.label))
        ],
    }
    engine.put_object(bucket, summary_key, json.dumps(summary, indent=2).encode())
    validation = write_validation(engine, project, version, train_entries, test_entries, report.skipped, ())
    return {
        "summary": {"Bucket": bucket, "Name": summary_key},
        "training_output": {"Assets": [_s3_uri_asset(bucket, train_key)]},
        "testing_output": {
            "Assets": [_s3_uri_asset(bucket, test_key)],
            **({"AutoCreate": True} if adapter and (version.testing_data or {}).get("AutoCreate") else {}),
        },
        **validation,
    }


INVALID_IMAGE_MESSAGE = "The image is invalid. Check S3 path and/or image properties."


def _error(reason: str) -> dict[str, str]:
    """A skipped image as a validation error: every image problem (path, format, size, dimensions,
    aspect ratio) is ERROR_INVALID_IMAGE in the validation manifests (Developer Guide, "Non-terminal
    JSON Line validation errors"); the engine's own finding follows the documented message."""
    return {"code": "ERROR_INVALID_IMAGE", "message": f"{INVALID_IMAGE_MESSAGE} ({reason})"}


def _validation_lines(entries: list[Entry], skipped: dict[str, str]) -> tuple[bytes, dict[str, Any]]:
    """A validation result manifest (the dataset lines, image-level errors added) and its statistics."""
    lines, indices = [], []
    valid = invalid = ignored = 0
    for index, entry in enumerate(entries):
        line = dict(entry.line)
        if entry.source_ref in skipped:
            line["errors"] = [_error(skipped[entry.source_ref])]
            indices.append(index)
            invalid += 1
        elif entry.labeled:
            valid += 1
        else:
            ignored += 1  # valid schema, no annotation: not used, not counted as invalid
        lines.append(json.dumps(line, separators=(",", ":")))
    detection = any(e.is_detection for e in entries)
    statistics = {
        "use_case": "OBJECT_LOCALIZATION"
        if detection
        else "IMAGE_LEVEL_LABELS"
        if entries
        else "NOT_DETERMINED",
        "total_json_lines": len(entries),
        "valid_json_lines": valid,
        "invalid_json_lines": invalid,
        "ignored_json_lines": ignored,
        "error_json_line_indices": indices,
        "errors": [],
    }
    return ("\n".join(lines) + "\n").encode(), statistics


def write_validation(
    engine: Engine,
    project: Project,
    version: Version,
    train_entries: list[Entry],
    test_entries: list[Entry],
    skipped: dict[str, str],
    failed: tuple[str, ...],
) -> dict[str, Any]:
    """The validation results (Developer Guide, "Getting the validation results"): manifest_summary.json
    and the training and testing manifests with validation errors, next to the other outputs."""
    bucket = version.output_config["S3Bucket"]
    stem = f"{project.name}.{version.name}"
    statistics: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    for name, entries in (("training", train_entries), ("testing", test_entries)):
        blob, stats = _validation_lines(entries, skipped)
        if name in failed:
            stats["errors"] = [
                {
                    "code": TOO_MANY_INVALID_ROWS,
                    "message": "The manifest file contains too many invalid rows.",
                }
            ]
        statistics[name] = stats
        key = _output_key(version, f"{stem}/{name}_manifest_with_validation.json")
        engine.put_object(bucket, key, blob, "application/x-ndjson")
        outputs[f"{name}_validation"] = {"Assets": [_s3_uri_asset(bucket, key)]}
    manifest_summary_key = _output_key(version, f"{stem}/manifest_summary.json")
    manifest_summary = {"statistics": statistics, "errors": []}
    engine.put_object(bucket, manifest_summary_key, json.dumps(manifest_summary, indent=2).encode())
    outputs["manifest_summary"] = {"Bucket": bucket, "Name": manifest_summary_key}
    return outputs


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 6) if values else 0.0
