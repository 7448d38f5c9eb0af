"""`autopilot status`: projects, datasets with stats, versions with status and F1 (and per-label
figures from each evaluation summary), production, running, and why a failed training failed
(from its manifest summary and validation manifests)."""

from __future__ import annotations

import argparse
from typing import Any

from autopilot.ops.context import (
    SETTINGS_PARAMETER,
    Context,
    add_command,
    iter_pages,
    project_items,
)
from lambdas.common.constants import (
    ITEM_PRODUCTION,
    ITEM_SERVING,
    ITEM_TRAINING,
    OUTPUT_DEAD_LETTER_QUEUES,
    OUTPUT_WORK_QUEUES,
    STACK_OUTPUTS,
)
from lambdas.common.settings import AppSettings
from lambdas.training import gate as gate_logic
from lambdas.training import outputs as training_outputs

RUNNING_STATUSES = ("RUNNING", "STARTING", "STOPPING")


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = add_command(commands, "status", status)
    parser.add_argument("--project", action="append", help="only this project (repeatable)")


def configured_projects(context: Context) -> list[str]:
    name = context.resources.find(SETTINGS_PARAMETER)
    raw = context.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    return sorted(AppSettings.from_json(raw).projects)


def stack_status(context: Context) -> dict[str, Any]:
    """Every resource of the stack, found through its output; the messages waiting in each queue."""
    outputs = {key: context.resources.find(key) for key in STACK_OUTPUTS}
    sqs = context.client("sqs")
    waiting = {}
    for key in (*OUTPUT_WORK_QUEUES, *OUTPUT_DEAD_LETTER_QUEUES):
        attributes = sqs.get_queue_attributes(
            QueueUrl=outputs[key], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        waiting[key] = int(attributes.get("ApproximateNumberOfMessages", 0))
    return {"outputs": outputs, "messages_waiting": waiting}


def _state_items(context: Context, project: str) -> dict[str, dict[str, Any]]:
    """The project's single items (production, training, serving), not the many staged lines,
    leases, ordering tokens or usage-ledger items (sort keys with a '#')."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    items = {}
    for item in project_items(context, project):
        if "#" in item["sk"]["S"]:
            continue
        plain = {key: deserializer.deserialize(value) for key, value in item.items()}
        items[str(plain.get("sk"))] = plain
    return items


def project_status(context: Context, project: str) -> dict[str, Any]:
    rekognition = context.client("rekognition")
    described = rekognition.describe_projects(ProjectNames=[project]).get("ProjectDescriptions", [])
    state = _state_items(context, project)
    production = state.get(ITEM_PRODUCTION) or {}
    result: dict[str, Any] = {
        "project": project,
        "exists": bool(described),
        "production": {
            key: production.get(key) for key in ("version_name", "version_arn", "f1_score", "promoted_at")
        }
        if production
        else None,
        "training": _plain(state.get(ITEM_TRAINING)),
        "serving": _plain(state.get(ITEM_SERVING)),
        "datasets": [],
        "versions": [],
    }
    if not described:
        return result
    project_description = described[0]
    result["project_arn"] = project_description["ProjectArn"]
    result["feature"] = project_description.get("Feature", "CUSTOM_LABELS")
    for dataset in project_description.get("Datasets", []):
        info = rekognition.describe_dataset(DatasetArn=dataset["DatasetArn"])["DatasetDescription"]
        result["datasets"].append(
            {"type": dataset["DatasetType"], "status": info.get("Status"), **(info.get("DatasetStats") or {})}
        )
    for version in iter_pages(
        rekognition.describe_project_versions,
        "ProjectVersionDescriptions",
        ProjectArn=project_description["ProjectArn"],
        MaxResults=100,
    ):
        arn = version["ProjectVersionArn"]
        entry: dict[str, Any] = {
            "name": arn.split("/version/", 1)[1].split("/", 1)[0] if "/version/" in arn else arn,
            "arn": arn,
            "status": version.get("Status"),
            "f1": (version.get("EvaluationResult") or {}).get("F1Score"),
            "production": arn == production.get("version_arn"),
            "min_inference_units": version.get("MinInferenceUnits"),
            "created": version.get("CreationTimestamp"),
        }
        outputs = training_outputs.TrainingOutputs(context.client("s3"))
        entry["labels"] = _labels(outputs, version)
        if version.get("Status") == "TRAINING_FAILED":
            entry["status_message"] = version.get("StatusMessage")
            explained = training_outputs.explain_training_failure(version, outputs)
            if not explained.empty or explained.unavailable:
                entry["validation"] = explained.to_dict()
        result["versions"].append(entry)
    result["running"] = [v["name"] for v in result["versions"] if v["status"] in RUNNING_STATUSES]
    return result


def _labels(outputs: training_outputs.TrainingOutputs, version: dict[str, Any]) -> list[dict[str, Any]] | str:
    """Per-label figures of a version's evaluation summary ([] without one; the error when unreadable)."""
    location = training_outputs.summary_location(version)
    if location is None:
        return []
    try:
        scores = gate_logic.label_scores(outputs.read_json(location))
    except Exception as error:  # shown in the report; the rest of the status stands
        return f"unavailable: {error}"
    return gate_logic.label_table(scores, None)


def _plain(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if not item:
        return None
    return {key: value for key, value in item.items() if key not in ("pk", "sk")}


def render(statuses: list[dict[str, Any]], stack: dict[str, Any] | None = None) -> str:
    lines = []
    if stack is not None:
        dead = {key: n for key, n in stack["messages_waiting"].items() if key in OUTPUT_DEAD_LETTER_QUEUES}
        stuck = ", ".join(f"{key} {n}" for key, n in dead.items() if n) or "none"
        lines.append(f"stack: {len(stack['outputs'])} resources found; dead-letter messages: {stuck}")
    for status in statuses:
        lines.append(f"project {status['project']}" + ("" if status["exists"] else " (not created yet)"))
        for dataset in status["datasets"]:
            lines.append(
                f"  dataset {dataset['type']:<5} {dataset.get('status', '?'):<18} "
                f"labeled {dataset.get('LabeledEntries', 0)}/{dataset.get('TotalEntries', 0)}, "
                f"labels {dataset.get('TotalLabels', 0)}, errors {dataset.get('ErrorEntries', 0)}"
            )
        for version in status["versions"]:
            f1 = f"{version['f1']:.3f}" if isinstance(version["f1"], (int, float)) else "-"
            marker = "  <- production" if version["production"] else ""
            lines.append(f"  version {version['name']:<40} {version['status']:<22} F1 {f1}{marker}")
            labels = version.get("labels")
            if isinstance(labels, str):
                lines.append(f"    labels: {labels}")
            for row in [] if isinstance(labels, str) else labels or []:
                images = row["test_images"] if row["test_images"] is not None else "-"
                lines.append(
                    f"    label {row['label']:<30} F1 {_figure(row['f1'])}  "
                    f"precision {_figure(row['precision'])}  recall {_figure(row['recall'])}  "
                    f"threshold {_figure(row['threshold'])}  test images {images}"
                )
            if version.get("status_message"):
                lines.append(f"    failed: {version['status_message']}")
            validation = version.get("validation") or {}
            for error in validation.get("manifest_errors", []):
                lines.append(f"    {error['scope']} {error['code']}: {error['message']}")
            for code, count in (validation.get("error_counts") or {}).items():
                lines.append(f"    {code}: {count} lines")
            for line in validation.get("first_lines_in_error", []):
                where = f"{line['dataset']} line {line['line']}: {line['source-ref']}"
                lines.append(f"    {where} {line['code']} {line['message']}")
            for missing in validation.get("unavailable", []):
                lines.append(f"    validation results unavailable: {missing}")
        training = status.get("training") or {}
        if training.get("last_outcome"):
            lines.append(f"  last training: {training['last_outcome']}: {training.get('last_reason', '')}")
        running = status.get("running") or []
        lines.append(f"  running: {', '.join(running) if running else 'nothing'}")
        if status["production"] is None and status["exists"]:
            lines.append("  production: none promoted yet")
    return "\n".join(lines)


def _figure(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def status(context: Context) -> int:
    """projects, datasets, versions (F1, production) and what is running

    Shows every configured project: its datasets with statistics, its versions with status and F1,
    which version is in production and which models are running.
    """

    stack = stack_status(context)
    projects = context.args.project or configured_projects(context)
    statuses = [project_status(context, project) for project in projects]
    context.emit({"stack": stack, "projects": statuses}, lambda: render(statuses, stack))
    return 0
