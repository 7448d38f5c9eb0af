"""Model lifecycle commands: train now, start/stop, promote/rollback.

`train`, `start` and `stop` send the same EventBridge requests the stack's rules listen for, so
the stack's own workflows do the work (locks, gates, retries); the command only waits and shows
progress when asked to. `promote` and `rollback` replace the production record through the
training workflow's own promote path (lambdas.training.promotion.promote: one conditional write,
one version.promoted event) and ask the model controller to reconcile.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from autopilot.ops.context import (
    EXIT_FAILURE,
    EXIT_NOT_FOUND,
    LIFECYCLE_TOPIC,
    STATE_TABLE,
    TRAINING_STATE_MACHINE,
    CommandError,
    Context,
    add_command,
    common_options,
    project_arn,
    run_command,
)
from lambdas.common.constants import (
    DETAIL_TYPE_MODEL_CONTROL_REQUESTED,
    DETAIL_TYPE_TRAIN_REQUESTED,
    EVENT_SOURCE,
)
from lambdas.common.events import LifecyclePublisher
from lambdas.common.production import ProductionRecord, get_production
from lambdas.training.promotion import build_record, promote
from lambdas.training.state import ProductionChangedError, TrainingStateStore

PROMOTABLE = ("TRAINING_COMPLETED", "RUNNING", "STOPPED", "STARTING", "STOPPING", "COPYING_COMPLETED")


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    train = add_command(commands, "train", train_now)
    train.add_argument("project")
    train.add_argument("--force", action="store_true", help="train even without enough new entries")
    _wait_options(train, default_timeout=24 * 3600)

    for action, text in (("start", "start the production version"), ("stop", "stop the running model")):
        parser = commands.add_parser(
            action,
            parents=[common_options()],
            help=f"{text} (a manual override of the idle/window policy)",
        )
        parser.add_argument("project")
        parser.add_argument(
            "--override-minutes", type=int, help="how long the override holds (default: the controller's)"
        )
        _wait_options(parser, default_timeout=3600)
        parser.set_defaults(func=run_command(control), action=action)

    auto = add_command(commands, "auto", control, help="clear a start/stop override (back to the policy)")
    auto.add_argument("project")
    auto.set_defaults(action="auto", wait=False, override_minutes=None)

    promote = add_command(commands, "promote", promote_version)
    promote.add_argument("project")
    promote.add_argument("version", help="VersionName of a trained version (see `autopilot status`)")

    rollback = add_command(commands, "rollback", rollback_version)
    rollback.add_argument("project")


def _wait_options(parser: argparse.ArgumentParser, default_timeout: int) -> None:
    parser.add_argument("--wait", action="store_true", help="wait for the outcome, with progress on stderr")
    parser.add_argument(
        "--timeout", type=float, default=default_timeout, help=f"seconds to wait (default {default_timeout})"
    )
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between checks (default 5)")


def put_request(context: Context, detail_type: str, detail: dict[str, Any]) -> str:
    response = context.client("events").put_events(
        Entries=[{"Source": EVENT_SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail)}]
    )
    if response.get("FailedEntryCount"):
        raise CommandError(f"EventBridge refused the request: {response['Entries']}")
    return str(response["Entries"][0].get("EventId", ""))


def train_now(context: Context) -> int:
    """request a training now (the stack's training workflow runs it)

    Sends the on-demand training request. Without --force the workflow still skips when there are
    not enough new labeled entries.
    """

    args = context.args
    requested_at = datetime.now(UTC)
    event_id = put_request(
        context, DETAIL_TYPE_TRAIN_REQUESTED, {"project": args.project, "force": args.force}
    )
    result: dict[str, Any] = {"project": args.project, "requested": True, "event_id": event_id}
    if args.wait:
        execution = _wait_for_training(context, args.project, requested_at)
        result["execution"] = execution
        if execution["status"] != "SUCCEEDED":
            context.emit(result, f"training of {args.project} ended {execution['status']}")
            return EXIT_FAILURE
    context.emit(
        result,
        f"training requested for {args.project}"
        + (f"; workflow {result['execution']['status']}" if "execution" in result else ""),
    )
    return 0


def _wait_for_training(context: Context, project: str, since: datetime) -> dict[str, Any]:
    sfn = context.client("stepfunctions")
    machine = context.resources.find(TRAINING_STATE_MACHINE)
    seen: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        for execution in sfn.list_executions(stateMachineArn=machine, maxResults=20).get("executions", []):
            if execution["startDate"] < since.replace(microsecond=0) - _SKEW:
                continue
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            try:
                payload = json.loads(described.get("input") or "{}")
            except ValueError:
                payload = {}
            if payload.get("project") != project:
                continue
            seen["current"] = {"arn": execution["executionArn"], "status": described["status"]}
            if described["status"] != "RUNNING":
                return seen["current"]
        return None

    def describe(_: Any) -> str:
        current = seen.get("current")
        return (
            f"training workflow {current['status'].lower()}"
            if current
            else "waiting for the workflow to start"
        )

    return dict(context.wait(check, describe))


_SKEW = timedelta(seconds=5)


def control(context: Context) -> int:
    args = context.args
    detail: dict[str, Any] = {"project": args.project, "action": args.action}
    if getattr(args, "override_minutes", None):
        detail["override_minutes"] = args.override_minutes
    put_request(context, DETAIL_TYPE_MODEL_CONTROL_REQUESTED, detail)
    result: dict[str, Any] = {"project": args.project, "action": args.action, "requested": True}
    if getattr(args, "wait", False) and args.action in ("start", "stop"):
        wanted = "RUNNING" if args.action == "start" else "STOPPED"
        result["status"] = _wait_for_model(context, args.project, wanted)
    context.emit(
        result,
        f"{args.action} requested for {args.project}"
        + (f"; model {result['status']}" if "status" in result else ""),
    )
    return 0


def _production_record(context: Context, project: str) -> ProductionRecord | None:
    return get_production(
        project, table_name=context.resources.find(STATE_TABLE), client=context.client("dynamodb")
    )


def _wait_for_model(context: Context, project: str, wanted: str) -> str:
    record = _production_record(context, project)
    if record is None:
        raise CommandError(
            f"project {project!r} has no production version to {wanted.lower()}", EXIT_NOT_FOUND
        )
    rekognition = context.client("rekognition")
    arn = project_arn(context, project)["ProjectArn"]
    current: dict[str, str] = {}

    def check() -> str | None:
        versions = rekognition.describe_project_versions(ProjectArn=arn, VersionNames=[record.version_name])
        status = str(versions["ProjectVersionDescriptions"][0]["Status"])
        current["status"] = status
        if status == "FAILED":
            raise CommandError(f"{record.version_name} FAILED: {versions['ProjectVersionDescriptions'][0]}")
        return status if status == wanted else None

    return str(context.wait(check, lambda _: f"{record.version_name}: {current.get('status', '?')}"))


def _describe_version(context: Context, project: str, version: str) -> dict[str, Any]:
    arn = project_arn(context, project)["ProjectArn"]
    found = context.client("rekognition").describe_project_versions(ProjectArn=arn, VersionNames=[version])
    descriptions = found.get("ProjectVersionDescriptions", [])
    if not descriptions:
        raise CommandError(f"project {project!r} has no version {version!r}", EXIT_NOT_FOUND)
    return dict(descriptions[0])


def _promote(context: Context, project: str, version: str, reason: str) -> dict[str, Any]:
    description = _describe_version(context, project, version)
    status = description.get("Status")
    if status not in PROMOTABLE:
        raise CommandError(
            f"version {version} is {status}; only trained versions ({', '.join(PROMOTABLE)}) qualify"
        )
    current = _production_record(context, project)
    if current is not None and current.version_name == version:
        return {"project": project, "version": version, "changed": False, "reason": "already in production"}
    record = build_record(
        project=project,
        version_arn=str(description["ProjectVersionArn"]),
        version_name=version,
        f1_score=float((description.get("EvaluationResult") or {}).get("F1Score") or 0.0),
        snapshot=current.dataset_snapshot.to_dict() if current else None,
        previous_version_arn=current.version_arn if current else None,
        execution_arn=None,
    )
    # The one promote path of the training workflow: the same conditional write, the same event.
    store = TrainingStateStore(context.resources.find(STATE_TABLE), client=context.client("dynamodb"))
    publisher = LifecyclePublisher(
        str(context.resources.find(LIFECYCLE_TOPIC)), sns_client=context.client("sns")
    )
    try:
        promote(
            store,
            record,
            publisher,
            previous_f1_score=current.f1_score if current else None,
            reason=reason,
        )
    except ProductionChangedError as error:
        raise CommandError("the production version changed meanwhile; run the command again") from error
    put_request(context, DETAIL_TYPE_MODEL_CONTROL_REQUESTED, {"project": project, "action": "auto"})
    return {
        "project": project,
        "version": version,
        "changed": True,
        "previous_version_arn": record.previous_version_arn,
        "f1": record.f1_score,
    }


def promote_version(context: Context) -> int:
    """make a trained version the production version"""

    args = context.args
    result = _promote(context, args.project, args.version, reason="promoted by an operator")
    context.emit(
        result,
        f"{args.project}: {args.version} " + ("is production" if result["changed"] else result["reason"]),
    )
    return 0


def rollback_version(context: Context) -> int:
    """make the previous production version the production version again"""

    args = context.args
    current = _production_record(context, args.project)
    if current is None or not current.previous_version_arn:
        raise CommandError(
            f"project {args.project!r} has no previous production version to roll back to", EXIT_NOT_FOUND
        )
    previous = current.previous_version_arn.split("/version/", 1)[1].split("/", 1)[0]
    result = _promote(context, args.project, previous, reason=f"rollback from {current.version_name}")
    context.emit(result, f"{args.project}: rolled back from {current.version_name} to {previous}")
    return 0
