"""What `autopilot report` shows, gathered from AWS (or the local stack) into typed records.

Evaluation: the version's evaluation summary (EvaluationResult.Summary: aggregate and per-label
figures with the assumed thresholds) and its testing manifest snapshot (TestingDataResult.Output:
every test image with the model's predictions judged true/false positive or negative; Developer
Guide, "Evaluation manifest snapshot"). Data: ListDatasetLabels and DescribeDataset of TRAIN and
TEST. Serving: the usage ledger (RUNNING intervals, starts and stops; see `autopilot cost`) and
the detection results kept under `<project>/results/` (their times give detections per hour).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from autopilot.engine.learning.snapshot import Judged
from autopilot.ops.context import (
    DATA_BUCKET,
    EXIT_NOT_FOUND,
    STATE_TABLE,
    CommandError,
    Context,
    iter_pages,
    project_items,
)
from autopilot.ops.cost import DEFAULT_IU_HOUR_USD, ledger
from lambdas.common import clock
from lambdas.common.constants import EVENT_ENTRIES_REJECTED, ITEM_KEPT_EVENT_PREFIX, RESULTS_FOLDER
from lambdas.common.production import get_production
from lambdas.serving import usage

NO_LABEL = "(none)"
EVALUATION_PREFIX = "rekognition-custom-labels-evaluation"
DETAILS = "rekognition-custom-labels-evaluation-details"


@dataclass(frozen=True)
class LabelRow:
    label: str
    f1: float
    precision: float
    recall: float
    threshold: float
    test_images: int


@dataclass
class TestImage:
    source_ref: str
    truth: list[str]
    judged: list[Judged]

    @property
    def top(self) -> str:
        """The predicted label with the highest confidence (classification), or NO_LABEL."""
        predicted = [j for j in self.judged if j.outcome in ("TP", "FP")]
        return max(predicted, key=lambda j: j.confidence).label if predicted else NO_LABEL

    @property
    def wrong(self) -> bool:
        return any(j.outcome in ("FP", "FN") for j in self.judged)


@dataclass
class Evaluation:
    version: str
    status: str
    kind: str  # classification | detection
    f1: float | None
    precision: float | None
    recall: float | None
    labels: list[LabelRow]
    images: list[TestImage]

    def confusion(self) -> dict[tuple[str, str], int]:
        """(true label, top predicted label) -> images; sums to the number of test images."""
        return dict(
            Counter((image.truth[0] if image.truth else NO_LABEL, image.top) for image in self.images)
        )


@dataclass(frozen=True)
class KeptRejection:
    time: str
    key: str
    reason: str


@dataclass
class DataSection:
    labels: dict[str, dict[str, int]]  # TRAIN|TEST -> label -> entries
    stats: dict[str, dict[str, int]]  # TRAIN|TEST -> DatasetStats
    rejections: list[KeptRejection] = field(default_factory=list)  # newest first, from kept events


@dataclass
class ServingSection:
    since: float
    until: float
    intervals: list[usage.Interval]
    transitions: list[usage.LedgerEntry]  # the RUNNING and STOPPED records, with the reason asked
    iu_hours: float
    usd: float
    detection_times: list[float]  # epoch seconds of the results written in the period

    @property
    def starts(self) -> int:
        return len(self.intervals)


@dataclass
class ReportData:
    project: str
    generated_at: float
    evaluation: Evaluation | None
    previous: Evaluation | None
    data: DataSection
    serving: ServingSection
    images: dict[str, bytes] = field(default_factory=dict)  # source-ref -> image bytes (mistakes)


def _s3_object(context: Context, bucket: str, key: str) -> bytes:
    return bytes(context.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def parse_snapshot_line(line: dict[str, Any]) -> TestImage:
    """One line of a testing manifest snapshot: ground truth and judged predictions."""
    truth: list[str] = []
    judged: list[Judged] = []
    for key, value in line.items():
        if not key.endswith("-metadata") or not isinstance(value, dict):
            continue
        attribute = key.removesuffix("-metadata")
        if attribute.startswith(EVALUATION_PREFIX):
            if "class-name" in value:
                outcome = _outcome(value.get(DETAILS) or {})
                judged.append(Judged(str(value["class-name"]), float(value.get("confidence", 0)), outcome))
            else:
                judged += _judged_boxes(line.get(attribute) or {}, value)
        elif "class-name" in value:
            truth.append(str(value["class-name"]))
        elif "class-map" in value:
            annotations = (line.get(attribute) or {}).get("annotations", [])
            truth += [str(value["class-map"].get(str(a.get("class_id")), "?")) for a in annotations]
    return TestImage(str(line.get("source-ref", "")), sorted(set(truth)), judged)


def _outcome(details: dict[str, Any]) -> str:
    if details.get("is-true-positive"):
        return "TP"
    if details.get("is-false-positive"):
        return "FP"
    if details.get("is-false-negative"):
        return "FN"
    return "TN"


def _judged_boxes(evaluation: dict[str, Any], metadata: dict[str, Any]) -> list[Judged]:
    size = (evaluation.get("image_size") or [{}])[0]
    width, height = float(size.get("width") or 1), float(size.get("height") or 1)
    boxes = []
    for annotation, item in zip(evaluation.get("annotations", []), metadata.get("objects", []), strict=False):
        label = str(metadata.get("class-map", {}).get(str(annotation.get("class_id")), "?"))
        ratios = (
            annotation["left"] / width,
            annotation["top"] / height,
            annotation["width"] / width,
            annotation["height"] / height,
        )
        boxes.append(
            Judged(label, float(item.get("confidence", 0)), _outcome(item.get(DETAILS) or {}), ratios)
        )
    return boxes


def evaluation_of(context: Context, project_arn: str, version: str) -> Evaluation:
    rekognition = context.client("rekognition")
    found = rekognition.describe_project_versions(ProjectArn=project_arn, VersionNames=[version])[
        "ProjectVersionDescriptions"
    ]
    if not found:
        raise CommandError(f"version {version!r} does not exist (see `autopilot status`)", EXIT_NOT_FOUND)
    description = found[0]
    result = description.get("EvaluationResult") or {}
    summary: dict[str, Any] = {}
    summary_object = (result.get("Summary") or {}).get("S3Object")
    if summary_object:
        summary = json.loads(_s3_object(context, summary_object["Bucket"], summary_object["Name"]))
    labels = [
        LabelRow(
            label=str(row["Label"]),
            f1=float(row["Metrics"]["F1Score"]),
            precision=float(row["Metrics"]["Precision"]),
            recall=float(row["Metrics"]["Recall"]),
            threshold=float(row["Metrics"]["Threshold"]),
            test_images=int(row.get("NumberOfTestingImages", 0)),
        )
        for row in summary.get("LabelEvaluationResults", [])
    ]
    images: list[TestImage] = []
    assets = ((description.get("TestingDataResult") or {}).get("Output") or {}).get("Assets") or []
    for asset in assets:
        s3_object = asset["GroundTruthManifest"]["S3Object"]
        text = _s3_object(context, s3_object["Bucket"], s3_object["Name"]).decode("utf-8")
        images += [parse_snapshot_line(json.loads(line)) for line in text.splitlines() if line.strip()]
    aggregated = summary.get("AggregatedEvaluationResults") or {}
    detection = "AveragePrecision" in aggregated or any(j.box for image in images for j in image.judged)
    return Evaluation(
        version=version,
        status=str(description.get("Status")),
        kind="detection" if detection else "classification",
        f1=result.get("F1Score"),
        precision=aggregated.get("Precision"),
        recall=aggregated.get("Recall"),
        labels=sorted(labels, key=lambda row: row.label),
        images=images,
    )


def _version_name(arn: str | None) -> str | None:
    return arn.split("/version/")[1].split("/")[0] if arn and "/version/" in arn else None


def data_section(context: Context, project: dict[str, Any]) -> DataSection:
    rekognition = context.client("rekognition")
    labels: dict[str, dict[str, int]] = {}
    stats: dict[str, dict[str, int]] = {}
    for dataset in project.get("Datasets", []):
        kind = str(dataset["DatasetType"])
        arn = dataset["DatasetArn"]
        stats[kind] = dict(
            rekognition.describe_dataset(DatasetArn=arn)["DatasetDescription"].get("DatasetStats") or {}
        )
        labels[kind] = {
            str(item["LabelName"]): int((item.get("LabelStats") or {}).get("EntryCount", 0))
            for item in iter_pages(
                rekognition.list_dataset_labels, "DatasetLabelDescriptions", DatasetArn=arn, MaxResults=100
            )
        }
    return DataSection(labels=labels, stats=stats)


def serving_section(context: Context, project: str, days: float, price: float) -> ServingSection:
    now = clock.now()
    since = now - days * 86400
    entries = ledger(context, project)
    intervals = usage.clip(usage.intervals(entries, now), since, now)
    transitions = sorted((e for e in entries if e.at >= since), key=lambda e: e.at)
    times: list[float] = []
    bucket = str(context.resources.find(DATA_BUCKET))
    paginator = context.client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{project}/{RESULTS_FOLDER}/"):
        for item in page.get("Contents", []):
            modified = item["LastModified"].timestamp()
            if modified >= since:
                times.append(modified)
    hours = usage.iu_hours(intervals)
    return ServingSection(since, now, intervals, transitions, hours, hours * price, sorted(times))


def kept_rejections(context: Context, project: str, days: float) -> list[KeptRejection]:
    """The rejections published in the last `days` (ingestion keeps its entries.rejected events)."""
    since = datetime.fromtimestamp(clock.now() - days * 86400, UTC).isoformat()
    found: list[KeptRejection] = []
    prefix = f"{ITEM_KEPT_EVENT_PREFIX}{EVENT_ENTRIES_REJECTED}#"
    for item in project_items(context, project, prefix):
        try:
            message = json.loads(item["message"]["S"])
        except (KeyError, ValueError):
            continue  # a message cut at the size limit: not shown
        if str(message.get("time", "")) < since:
            continue
        for rejection in (message.get("detail") or {}).get("rejections", []):
            found.append(
                KeptRejection(str(message["time"]), str(rejection.get("key")), str(rejection.get("reason")))
            )
    return sorted(found, key=lambda r: r.time, reverse=True)


def gather(
    context: Context, project: str, version: str | None, *, days: float = 7.0, max_images: int = 24
) -> ReportData:
    rekognition = context.client("rekognition")
    found = rekognition.describe_projects(ProjectNames=[project]).get("ProjectDescriptions", [])
    if not found:
        raise CommandError(f"project {project!r} does not exist yet", EXIT_NOT_FOUND)
    described = found[0]
    production = get_production(
        project, table_name=str(context.resources.find(STATE_TABLE)), client=context.client("dynamodb")
    )
    chosen = version or (production.version_name if production else None)
    evaluation = evaluation_of(context, described["ProjectArn"], chosen) if chosen else None
    previous_name = None
    if production is not None:
        previous_name = (
            production.version_name
            if chosen != production.version_name
            else _version_name(production.previous_version_arn)
        )
    previous = None
    if previous_name and previous_name != chosen:
        try:
            previous = evaluation_of(context, described["ProjectArn"], previous_name)
        except CommandError:
            previous = None  # deleted by retention: nothing to compare with
    data = data_section(context, described)
    data.rejections = kept_rejections(context, project, days)
    report = ReportData(
        project=project,
        generated_at=clock.now(),
        evaluation=evaluation,
        previous=previous,
        data=data,
        serving=serving_section(context, project, days, DEFAULT_IU_HOUR_USD),
    )
    if evaluation is not None:
        for image in [i for i in evaluation.images if i.wrong][:max_images]:
            try:
                report.images[image.source_ref] = _s3_object(context, *_split(image.source_ref))
            except ClientError:
                continue  # an image deleted since: shown without a thumbnail
    return report
