"""Custom moderation adapters: manifests in the adapter format, the automatic test split, the
evaluation without the engine's internal "safe" class, and simulated human review (Amazon A2I).

Adapter manifest lines (Developer Guide, "Manifest file formats", using-adapters-manifest-files):
``{"source-ref": "s3://bucket/key.jpg", "content-moderation-groundtruth": {"ModerationLabels":
[{"Name": "Alcohol"}]}}``, an empty list for an image without unsafe content.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from autopilot.engine.backend import Engine
from autopilot.engine.learning.evaluation import macro_f1
from autopilot.engine.learning.training import Prediction, TrainingFailure, TrainingReport
from autopilot.engine.manifests import MAX_LINE_CHARS, Entry, ManifestLineError, split_s3_uri
from autopilot.engine.moderation import LABEL_NAMES, is_moderation_label

GROUNDTRUTH = "content-moderation-groundtruth"
# The engine learns "no unsafe content" as a class of its own; it is never reported.
SAFE_CLASS = "(no unsafe content)"
# Share of the training manifest moved to the test set by TestingData.AutoCreate. The adapter
# pages give no ratio; the Custom Labels Guide's automatic split uses 20% of the training images.
AUTO_SPLIT_FRACTION = 0.2
INVALID_LINE_SHARE = 0.2


class AdapterLabelError(TrainingFailure):
    """A manifest names a label outside the moderation taxonomy."""


def parse_adapter_line(text: str) -> Entry:
    """One adapter manifest line as an entry (ManifestLineError for a line that cannot be used)."""
    if len(text) > MAX_LINE_CHARS:
        raise ManifestLineError("ERROR_LINE_TOO_LONG", f"The line is over {MAX_LINE_CHARS} characters.")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestLineError("ERROR_INVALID_JSON_LINE", f"The line is not valid JSON: {exc.msg}.") from exc
    source_ref = raw.get("source-ref") if isinstance(raw, dict) else None
    if not isinstance(source_ref, str) or not source_ref:
        raise ManifestLineError(
            "ERROR_MISSING_SOURCE_REF", "The line has no source-ref naming the image in S3."
        )
    split_s3_uri(source_ref)
    truth = raw.get(GROUNDTRUTH)
    labels = truth.get("ModerationLabels") if isinstance(truth, dict) else None
    if not isinstance(labels, list) or not all(
        isinstance(item, dict) and isinstance(item.get("Name"), str) for item in labels
    ):
        raise ManifestLineError(
            "ERROR_INVALID_LABEL_ATTRIBUTE_FORMAT",
            f'{GROUNDTRUTH} must be {{"ModerationLabels": [{{"Name": ...}}, ...]}} '
            "(an empty list for an image without unsafe content).",
        )
    names = list(dict.fromkeys(item["Name"] for item in labels))
    unknown = [name for name in names if not is_moderation_label(name)]
    if unknown:
        raise AdapterLabelError(
            f"{source_ref}: {', '.join(repr(n) for n in unknown)} is not a moderation label. "
            f"Valid names: {', '.join(LABEL_NAMES)}."
        )
    return Entry(source_ref=source_ref, line=raw, image_labels=names or [SAFE_CLASS])


def manifest_blobs(
    engine: Engine, assets: list[dict[str, Any]], what: str
) -> Iterator[tuple[dict[str, Any], bytes]]:
    """Each asset's GroundTruthManifest S3Object and its content (TrainingFailure when unreadable)."""
    for asset in assets:
        s3_object = (asset.get("GroundTruthManifest") or {}).get("S3Object") or {}
        if "Bucket" not in s3_object or "Name" not in s3_object:
            raise TrainingFailure(f"{what} asset has no GroundTruthManifest.S3Object.")
        try:
            blob = engine.get_object(s3_object["Bucket"], s3_object["Name"], s3_object.get("Version"))
        except (ClientError, BotoCoreError) as exc:
            raise TrainingFailure(
                f"The {what} manifest s3://{s3_object['Bucket']}/{s3_object['Name']} cannot be read: {exc}"
            ) from exc
        yield s3_object, blob


def read_adapter_manifests(engine: Engine, assets: list[dict[str, Any]], what: str) -> list[Entry]:
    """The entries of the training or testing assets; the last line of a source-ref wins."""
    entries: dict[str, Entry] = {}
    for s3_object, blob in manifest_blobs(engine, assets, what):
        lines = [line for line in blob.decode("utf-8", errors="replace").splitlines() if line.strip()]
        failures: list[tuple[int, ManifestLineError]] = []
        for number, line in enumerate(lines, start=1):
            try:
                entry = parse_adapter_line(line)
            except ManifestLineError as exc:
                failures.append((number, exc))
                continue
            entries[entry.source_ref] = entry
        if not lines or len(failures) > INVALID_LINE_SHARE * len(lines):
            first = f" (first: line {failures[0][0]}: {failures[0][1].message})" if failures else ""
            raise TrainingFailure(
                f"More than 20% of the lines of the {what} manifest "
                f"s3://{s3_object['Bucket']}/{s3_object['Name']} are invalid{first}."
                if lines
                else f"The {what} manifest s3://{s3_object['Bucket']}/{s3_object['Name']} has no lines."
            )
    return list(entries.values())


def auto_split(entries: list[Entry], seed: int) -> tuple[list[Entry], list[Entry]]:
    """(training, testing): 20% of each label set's images, at least one of each set of two or more."""
    rng = random.Random(seed)
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        groups.setdefault("|".join(sorted(entry.image_labels)), []).append(entry)
    testing: set[str] = set()
    for key in sorted(groups):
        group = sorted(groups[key], key=lambda e: e.source_ref)
        rng.shuffle(group)
        count = round(len(group) * AUTO_SPLIT_FRACTION) or (1 if len(group) >= 2 else 0)
        testing.update(e.source_ref for e in group[:count])
    return (
        [e for e in entries if e.source_ref not in testing],
        [e for e in entries if e.source_ref in testing],
    )


def without_safe_class(report: TrainingReport) -> TrainingReport:
    """The evaluation over the moderation labels only (the safe class is the engine's device)."""
    metrics = [m for m in report.label_metrics if m.label != SAFE_CLASS]
    confusion = [
        row for row in report.confusion if SAFE_CLASS not in (row["GroundTruthLabel"], row["PredictedLabel"])
    ]
    return replace(
        report,
        label_metrics=metrics,
        f1=macro_f1([m for m in metrics if m.test_images > 0]),
        confusion=confusion,
    )


def unsafe(predictions: list[Prediction]) -> list[Prediction]:
    return [p for p in predictions if p.label != SAFE_CLASS]


def human_loop_output(
    config: dict[str, Any],
    predictions: list[Prediction],
    band: tuple[float, float],
    region: str,
    account: str,
) -> dict[str, Any]:
    """A simulated HumanLoopActivationOutput: the loop starts when an unsafe label's confidence
    falls in ``band`` [low, high); the ARN is built from the HumanLoopName."""
    low, high = band
    activated = any(low <= p.confidence < high for p in predictions)
    condition = {
        "ConditionType": "ModerationLabelConfidenceCheck",
        "ConditionParameters": {
            "ModerationLabelName": "*",
            "ConfidenceGreaterThanEquals": low,
            "ConfidenceLessThan": high,
        },
        "EvaluationResult": activated,
    }
    output: dict[str, Any] = {
        "HumanLoopActivationConditionsEvaluationResults": json.dumps({"Conditions": [condition]}),
    }
    if activated:
        output["HumanLoopArn"] = f"arn:aws:sagemaker:{region}:{account}:human-loop/{config['HumanLoopName']}"
        output["HumanLoopActivationReasons"] = ["ConditionsEvaluation"]
    return output
