"""`autopilot project delete P --yes`: remove a project and everything the app keeps for it.

Order (each step reported, each safe to repeat after an interruption):
1. refuse while a version trains (DeleteProjectVersion is refused then, and the training would
   write into a project that is going away);
2. remove the app's production record and serving state first, so the controller has nothing to
   start while the models are stopped;
3. stop every RUNNING version (a STARTING one is waited for, then stopped; a STOPPING one waited
   for), then delete every version, waiting out DELETING;
4. delete the datasets (DELETE_IN_PROGRESS waited out), then the project (DELETING waited out);
5. delete the app's remaining records of the project in the state table (staged lines, leases,
   training lock, usage ledger).
A project that is already gone only gets step 5: a second run is a no-op that says so.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from autopilot.ops.context import (
    EXIT_FAILURE,
    STATE_TABLE,
    CommandError,
    Context,
    add_command,
    confirmed,
    iter_pages,
    project_items,
)
from lambdas.common.constants import ITEM_PRODUCTION, ITEM_SERVING, STATE_PK, STATE_SK

TRANSIENT = ("STARTING", "STOPPING", "DELETING", "COPYING_IN_PROGRESS")


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    project = commands.add_parser("project", help="project-wide operations")
    sub = project.add_subparsers(dest="project_command", metavar="COMMAND", required=True)
    delete = add_command(sub, "delete", delete_project, __doc__, raw=True)
    delete.add_argument("project")
    delete.add_argument(
        "--yes", action="store_true", help="confirm: models, datasets and records are deleted"
    )
    delete.add_argument("--interval", type=float, default=5.0, help="seconds between checks (default 5)")
    delete.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds to wait for each step (default 3600)"
    )


def _describe_project(context: Context, name: str) -> dict[str, Any] | None:
    found = (
        context.client("rekognition").describe_projects(ProjectNames=[name]).get("ProjectDescriptions", [])
    )
    return dict(found[0]) if found else None


def _versions(context: Context, project_arn: str) -> list[dict[str, Any]]:
    try:
        return list(
            iter_pages(
                context.client("rekognition").describe_project_versions,
                "ProjectVersionDescriptions",
                ProjectArn=project_arn,
                MaxResults=100,
            )
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return []
        raise


def _version_name(arn: str) -> str:
    return arn.split("/version/")[1].split("/")[0]


def _version_status(context: Context, project_arn: str, name: str) -> str | None:
    try:
        found = context.client("rekognition").describe_project_versions(
            ProjectArn=project_arn, VersionNames=[name]
        )["ProjectVersionDescriptions"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise
    return str(found[0]["Status"]) if found else None


def _wait(context: Context, what: str, check: Any) -> Any:
    return context.wait(check, lambda _: what)


def _delete(call: Callable[..., Any], **arguments: Any) -> None:
    """A delete call; a resource that is already gone is fine."""
    try:
        call(**arguments)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise


def delete_project(context: Context) -> int:
    """stop and delete every version, the datasets, the project and the app's records of it"""

    args = context.args
    confirmed(args, f"this deletes every model, dataset and record of {args.project}", export="the datasets")
    rekognition = context.client("rekognition")
    steps: list[str] = []
    described = _describe_project(context, args.project)
    if described is not None:
        project_arn = str(described["ProjectArn"])
        versions = _versions(context, project_arn)
        training = [
            _version_name(v["ProjectVersionArn"]) for v in versions if v["Status"] == "TRAINING_IN_PROGRESS"
        ]
        if training:
            raise CommandError(
                f"version {', '.join(training)} of {args.project} is training; DeleteProjectVersion is "
                "refused while a version trains. Run this again when `autopilot status` shows it ended",
                EXIT_FAILURE,
            )
        steps += _forget(context, args.project, (ITEM_PRODUCTION, ITEM_SERVING))
        for version in versions:
            steps += _remove_version(context, project_arn, str(version["ProjectVersionArn"]))
        for dataset in described.get("Datasets", []):
            steps += _remove_dataset(context, str(dataset["DatasetArn"]), str(dataset["DatasetType"]))
        if _describe_project(context, args.project) is not None:
            _delete(rekognition.delete_project, ProjectArn=project_arn)
            _wait(
                context,
                f"waiting for project {args.project} to be deleted",
                lambda: _describe_project(context, args.project) is None,
            )
            steps.append(f"deleted project {args.project}")
    else:
        steps.append(f"project {args.project} does not exist in Rekognition")
    steps += _forget(context, args.project, None)
    context.emit({"project": args.project, "steps": steps}, "\n".join(steps))
    return 0


def _remove_version(context: Context, project_arn: str, version_arn: str) -> list[str]:
    rekognition = context.client("rekognition")
    name = _version_name(version_arn)
    steps: list[str] = []
    status = _version_status(context, project_arn, name)
    if status in TRANSIENT and status != "DELETING":
        status = _wait(
            context,
            f"waiting for {name} to leave {status}",
            lambda: (s := _version_status(context, project_arn, name)) not in TRANSIENT and (s or "GONE"),
        )
    if status == "RUNNING":
        rekognition.stop_project_version(ProjectVersionArn=version_arn)
        _wait(
            context,
            f"waiting for {name} to stop",
            lambda: _version_status(context, project_arn, name) not in ("RUNNING", "STOPPING"),
        )
        steps.append(f"stopped {name}")
    if status not in (None, "GONE", "DELETING"):
        _delete(rekognition.delete_project_version, ProjectVersionArn=version_arn)
    if status not in (None, "GONE"):
        _wait(
            context,
            f"waiting for {name} to be deleted",
            lambda: _version_status(context, project_arn, name) is None,
        )
        steps.append(f"deleted version {name}")
    return steps


def _remove_dataset(context: Context, arn: str, dataset_type: str) -> list[str]:
    from autopilot.ops.dataset_admin import BUSY_DATASET, dataset_status

    status = dataset_status(context, arn)
    if status is None:
        return []
    if status in ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS"):
        _wait(
            context,
            f"waiting for the {dataset_type} dataset to finish {status}",
            lambda: dataset_status(context, arn) not in BUSY_DATASET[:2],
        )
    if dataset_status(context, arn) not in (None, "DELETE_IN_PROGRESS"):
        _delete(context.client("rekognition").delete_dataset, DatasetArn=arn)
    _wait(
        context,
        f"waiting for the {dataset_type} dataset to be deleted",
        lambda: dataset_status(context, arn) is None,
    )
    return [f"deleted the {dataset_type} dataset"]


def _forget(context: Context, project: str, kinds: tuple[str, ...] | None) -> list[str]:
    """Deletes the project's items (only the given sort keys, or all) from the state table."""
    table = str(context.resources.find(STATE_TABLE))
    dynamodb = context.client("dynamodb")
    keys = [
        {STATE_PK: item[STATE_PK], STATE_SK: item[STATE_SK]}
        for item in project_items(context, project, keys_only=True)
        if kinds is None or item[STATE_SK]["S"] in kinds
    ]
    for start in range(0, len(keys), 25):
        pending: dict[str, Any] = {
            table: [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
        }
        for _ in range(10):  # unprocessed items are retried, bounded
            left = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not left:
                break
            pending = left
        else:
            raise CommandError("the state table kept refusing deletes; run the command again", EXIT_FAILURE)
    if kinds is not None:
        return [f"removed the {' and '.join(k.lower() for k in kinds)} records"] if keys else []
    return [f"removed {len(keys)} remaining records of {project} from the state table"]
