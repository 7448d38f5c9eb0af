"""What the demo measures and reports: the engine's dataset stats, the held-out detections, the
published lifecycle events, inference-unit hours and the summary it prints."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3

from lambdas.common.constants import (
    EVENT_MODEL_RUNNING,
    EVENT_MODEL_STARTING,
    EVENT_MODEL_STOPPED,
    EVENT_TRAINING_COMPLETED,
    EVENT_VERSION_PROMOTED,
    INFERENCE_FOLDER,
    ITEM_USAGE_PREFIX,
    OUTPUT_STATE_TABLE,
    PROJECT_PK_PREFIX,
    STATE_PK,
    STATE_SK,
)

if TYPE_CHECKING:
    from autopilot.local.demo_options import DemoOptions, DemoReport
    from autopilot.local.runtime import LocalRuntime
    from autopilot.local.sample_data import DemoSplit


def project_events(runtime: LocalRuntime, project: str, event_type: str) -> list[dict[str, Any]]:
    """Lifecycle events of one type and project published on the stack's topics, in order."""
    found = []
    for published in runtime.published:
        body = published.json()
        if isinstance(body, dict) and body.get("type") == event_type and body.get("project") == project:
            found.append(body)
    return found


def published_detections(runtime: LocalRuntime) -> list[dict[str, Any]]:
    found = []
    for published in runtime.published:
        body = published.json()
        if isinstance(body, dict) and "top_label" in body and "image" in body:
            found.append(body)
    return found


def dataset_stats(project: str) -> dict[str, dict[str, Any]]:
    rekognition = boto3.client("rekognition")
    stats: dict[str, dict[str, Any]] = {}
    try:
        projects = rekognition.describe_projects(ProjectNames=[project]).get("ProjectDescriptions", [])
    except Exception:  # the engine answers errors for unknown projects early on; treat as none yet
        return stats
    for described_project in projects:
        for dataset in described_project.get("Datasets", []):
            described = rekognition.describe_dataset(DatasetArn=dataset["DatasetArn"])["DatasetDescription"]
            stats[dataset["DatasetType"]] = {
                "Status": described.get("Status", ""),
                **(described.get("DatasetStats") or {}),
            }
    return stats


def held_out_results(
    runtime: LocalRuntime, project: str, split: DemoSplit
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Held-out image name -> (true label, its published detection)."""
    truth = {image.filename: image.label for image in split.held_out}
    results: dict[str, tuple[str, dict[str, Any]]] = {}
    for body in published_detections(runtime):
        key = str((body.get("image") or {}).get("key", ""))
        name = key.rsplit("/", 1)[-1]
        if name in truth and key.startswith(f"{project}/{INFERENCE_FOLDER}/"):
            results[name] = (truth[name], body)
    return results


def summarize(runtime: LocalRuntime, options: DemoOptions, split: DemoSplit | None) -> dict[str, Any]:
    project = options.project
    summary: dict[str, Any] = {}
    try:
        summary["dataset_entries"] = {
            kind: s.get("LabeledEntries", 0) for kind, s in dataset_stats(project).items()
        }
    except Exception as error:  # the summary reports what it can
        summary["dataset_entries"] = f"unavailable: {error}"
    promoted = project_events(runtime, project, EVENT_VERSION_PROMOTED)
    completed = project_events(runtime, project, EVENT_TRAINING_COMPLETED)
    f1 = None
    for body in promoted[-1:] + completed[-1:]:
        detail = body.get("detail") or {}
        f1 = f1 if f1 is not None else detail.get("f1") or detail.get("f1_score") or detail.get("F1Score")
    summary["f1"] = f1
    # The evaluation per label (the gate's figures from the evaluation summary).
    labels = ((completed[-1].get("detail") or {}).get("labels") if completed else None) or []
    if labels:
        summary["label_f1"] = {row["label"]: row["f1"] for row in labels}
    if split is not None:
        # F1 is the engine's evaluation on the TEST dataset, the same set that picks each label's
        # assumed threshold (as on AWS), so it is optimistic; the held-out images were never seen.
        summary["f1_computed_on"] = (
            f"TEST dataset ({len(split.test)} images, also used to pick the assumed thresholds)"
        )
        results = held_out_results(runtime, project, split)
        correct = sum(1 for truth, result in results.values() if result.get("top_label") == truth)
        summary["held_out_images"] = len(split.held_out)
        summary["held_out_detected"] = len(results)
        summary["held_out_accuracy"] = round(correct / len(results), 3) if results else None
        summary["split"] = (
            f"digits shuffled with seed {options.seed}, then cut per label into "
            f"{options.train_per_label} train, {options.test_per_label} test and "
            f"{options.held_out_per_label} held out"
        )
    summary["messages_published"] = dict(
        Counter(published.topic_arn.rsplit(":", 1)[-1] for published in runtime.published)
    )
    summary["inference_unit_hours"] = inference_unit_hours(runtime, options.speed, project)
    summary["model_starts"] = len(project_events(runtime, project, EVENT_MODEL_STARTING))
    summary["measured_transitions"] = measured_transitions(runtime, project)
    summary["function_invocations"] = len(runtime.lambdas.invocations)
    summary["function_errors"] = sum(1 for i in runtime.lambdas.invocations if i.error is not None)
    summary["dead_letter_messages"] = runtime.dead_letter_depths()
    summary["step_functions_executions"] = dict(Counter(runtime.executions.values()))
    iam = runtime.iam_summary()
    summary["iam"] = (
        {key: iam[key] for key in ("checked", "denied", "unmapped", "unknown_condition_keys")}
        | ({"first_denial": iam["denials"][0]} if iam["denials"] else {})
        if iam["enforced"]
        else "not enforced (--no-iam)"
    )
    return summary


def measured_transitions(runtime: LocalRuntime, project: str) -> dict[str, Any]:
    """The start and stop durations (simulated seconds) the controller measured from the model's
    own transitions: what the adaptive idle threshold learns a restart costs."""
    from lambdas.serving.state import ServingStore

    try:
        store = ServingStore(runtime.output(OUTPUT_STATE_TABLE), boto3.client("dynamodb"))
        history = store.load(project).idle
    except Exception as error:  # the summary reports what it can
        return {"unavailable": str(error)}
    return {"start_seconds": list(history.start_seconds), "stop_seconds": list(history.stop_seconds)}


def inference_unit_hours(runtime: LocalRuntime, speed: float, project: str = "") -> dict[str, Any]:
    """Running time between model.running and model.stopped (real seconds), and the inference-unit
    hours of the usage ledger the model control workflow wrote (on the runtime's clock, as on AWS)."""
    running = [p for p in runtime.published if (p.json() or {}).get("type") == EVENT_MODEL_RUNNING]
    stopped = [p for p in runtime.published if (p.json() or {}).get("type") == EVENT_MODEL_STOPPED]
    if not running:
        return {"local_seconds": 0.0, "iu_hours_at_aws_pace": 0.0}
    end = stopped[-1].received_at if stopped else time.monotonic()
    seconds = max(0.0, end - running[0].received_at)
    units = int((running[0].json().get("detail") or {}).get("min_inference_units", 1) or 1)
    ledger = ledger_iu_hours(runtime, project) if project else None
    return {
        "local_seconds": round(seconds, 1),
        "inference_units": units,
        # The ledger's hours; without it the real seconds at the clock's speed.
        "iu_hours_at_aws_pace": round(ledger if ledger is not None else seconds * speed * units / 3600, 3),
    }


def ledger_iu_hours(runtime: LocalRuntime, project: str) -> float | None:
    """IU-hours of the project's usage ledger up to the runtime's now; None when it cannot be read."""
    from lambdas.serving import usage

    try:
        items = boto3.client("dynamodb").query(
            TableName=runtime.output(OUTPUT_STATE_TABLE),
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :usage)",
            ExpressionAttributeNames={"#pk": STATE_PK, "#sk": STATE_SK},
            ExpressionAttributeValues={
                ":pk": {"S": f"{PROJECT_PK_PREFIX}{project}"},
                ":usage": {"S": ITEM_USAGE_PREFIX},
            },
            ConsistentRead=True,
        )["Items"]
        entries = [
            usage.LedgerEntry(
                item["status"]["S"],
                usage.parse_time(item["at"]["S"]),
                item["version"]["S"],
                int(item["units"]["N"]),
            )
            for item in items
        ]
    except Exception:  # the summary reports what it can
        return None
    return usage.iu_hours(usage.intervals(entries, runtime.clock.now().timestamp()))


def print_summary(report: DemoReport, say: Callable[[str], None]) -> None:
    say("")
    say("Summary")
    for phase in report.phases:
        say(f"  [{phase.status:>7}] {phase.name} ({phase.seconds:.1f}s)")
    for key, value in report.summary.items():
        shown = json.dumps(value) if isinstance(value, (dict, list)) else value
        say(f"  {key.replace('_', ' ')}: {shown}")
    if report.errors:
        say(f"  runtime errors: {len(report.errors)} (first: {report.errors[0][:200]})")
    say(f"  total: {report.total_seconds:.1f}s -> {'OK' if report.ok else 'FAILED'}")
