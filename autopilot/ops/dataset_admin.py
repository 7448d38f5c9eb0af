"""`autopilot dataset import|copy|reset|export`: whole-dataset operations.

- import: CreateDataset from a Ground Truth manifest when the dataset does not exist; otherwise the
  manifest is copied under `<project>/manifests/<train|test>/`, so its lines go through the same
  validation and staged, serialized updates as uploads (ingestion).
- copy: CreateDataset with DatasetSource.DatasetArn (another project's dataset of the same type).
- reset: DeleteDataset, waiting out DELETE_IN_PROGRESS, then a new empty dataset; refused while the
  dataset is being created or updated, or while a version of the project trains.
- export: every entry (ListDatasetEntries pages) as a manifest, to stdout, a file or S3: a backup
  that `dataset import` takes back.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from autopilot.ops.context import (
    DATA_BUCKET,
    EXIT_FAILURE,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    CommandError,
    Context,
    common_options,
    confirmed,
    iter_pages,
    project_arn,
    run_command,
)
from lambdas.common.constants import FEATURE_CUSTOM_LABELS, MANIFEST_SUFFIX, MANIFESTS_FOLDER

DATASET_TYPES = ("train", "test")
BUSY_DATASET = ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS")
DATASET_WAIT_S = 3600.0


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    dataset = commands.add_parser(
        "dataset", help="import, copy, reset or export a whole dataset", description=__doc__
    )
    sub = dataset.add_subparsers(dest="dataset_command", metavar="COMMAND", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, parents=[common_options()], help=help_text)
        parser.add_argument("project")
        parser.add_argument("dataset", choices=DATASET_TYPES, help="train or test")
        parser.add_argument(
            "--interval", type=float, default=5.0, help="seconds between status checks (default 5)"
        )
        parser.add_argument(
            "--timeout", type=float, default=DATASET_WAIT_S, help="seconds to wait (default 3600)"
        )
        return parser

    imported = add("import", "import a Ground Truth manifest (s3://bucket/key) into a dataset")
    imported.add_argument("--manifest", required=True, help="s3://bucket/key of the manifest")
    imported.set_defaults(func=run_command(import_dataset))

    copied = add("copy", "create the dataset as a copy of another project's dataset of the same type")
    copied.add_argument("--from", dest="source", required=True, help="the project to copy from")
    copied.set_defaults(func=run_command(copy_dataset))

    reset = add("reset", "delete the dataset and create it again, empty")
    reset.add_argument("--yes", action="store_true", help="confirm: every entry of the dataset is removed")
    reset.set_defaults(func=run_command(reset_dataset))

    exported = add("export", "write every entry as a manifest (stdout, a file or s3://bucket/key)")
    exported.add_argument("--to", help="FILE or s3://bucket/key (default: stdout)")
    exported.set_defaults(func=run_command(export_dataset))


# -- helpers ------------------------------------------------------------------------------------
def parse_s3_url(url: str, what: str) -> tuple[str, str]:
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise CommandError(f"{what} must look like s3://bucket/key, got {url!r}", EXIT_USAGE)
    return parsed.netloc, parsed.path.lstrip("/")


def find_dataset(context: Context, project: str, dataset_type: str) -> str | None:
    for dataset in project_arn(context, project).get("Datasets", []):
        if dataset["DatasetType"] == dataset_type.upper():
            return str(dataset["DatasetArn"])
    return None


def require_dataset(context: Context, project: str, dataset_type: str) -> str:
    arn = find_dataset(context, project, dataset_type)
    if arn is None:
        raise CommandError(f"project {project!r} has no {dataset_type.upper()} dataset", EXIT_NOT_FOUND)
    return arn


def dataset_status(context: Context, arn: str) -> str | None:
    """The dataset's status, None once it is gone (DeleteDataset finished)."""
    try:
        described = context.client("rekognition").describe_dataset(DatasetArn=arn)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise
    return str(described["DatasetDescription"]["Status"])


def wait_dataset(context: Context, arn: str, *, gone: bool = False) -> str | None:
    """Waits until the dataset is no longer *_IN_PROGRESS (or, with gone, until it is deleted)."""

    def check() -> Any:
        status = dataset_status(context, arn)
        if gone:
            return status is None
        return status if status not in BUSY_DATASET else None

    result = context.wait(
        check, lambda _: f"waiting for {arn.rsplit('/', 3)[-3]} to be {'deleted' if gone else 'ready'}"
    )
    return None if gone else str(result)


def training_in_progress(context: Context, project_arn_: str) -> list[str]:
    versions = iter_pages(
        context.client("rekognition").describe_project_versions,
        "ProjectVersionDescriptions",
        ProjectArn=project_arn_,
        MaxResults=100,
    )
    return [
        str(v["ProjectVersionArn"]).split("/version/")[1].split("/")[0]
        for v in versions
        if v.get("Status") == "TRAINING_IN_PROGRESS"
    ]


def create_dataset(context: Context, project: str, dataset_type: str, source: dict[str, Any] | None) -> str:
    """CreateDataset (creating the project first if needed) and waits for CREATE_COMPLETE."""
    rekognition = context.client("rekognition")
    try:
        arn = str(project_arn(context, project)["ProjectArn"])
    except CommandError:
        arn = str(
            rekognition.create_project(ProjectName=project, Feature=FEATURE_CUSTOM_LABELS)["ProjectArn"]
        )
    request: dict[str, Any] = {"ProjectArn": arn, "DatasetType": dataset_type.upper()}
    if source:
        request["DatasetSource"] = source
    dataset = str(rekognition.create_dataset(**request)["DatasetArn"])
    status = wait_dataset(context, dataset)
    if status != "CREATE_COMPLETE":
        described = rekognition.describe_dataset(DatasetArn=dataset)["DatasetDescription"]
        raise CommandError(
            f"CreateDataset ended {status}: {described.get('StatusMessage', '')} "
            f"({described.get('StatusMessageCode', '')})",
            EXIT_FAILURE,
        )
    return dataset


def _stats(context: Context, arn: str) -> dict[str, Any]:
    description = context.client("rekognition").describe_dataset(DatasetArn=arn)["DatasetDescription"]
    return dict(description.get("DatasetStats") or {})


# -- commands -----------------------------------------------------------------------------------
def import_dataset(context: Context) -> int:
    args = context.args
    bucket, key = parse_s3_url(args.manifest, "--manifest")
    s3 = context.client("s3")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        raise CommandError(f"cannot read the manifest {args.manifest}: {error}", EXIT_NOT_FOUND) from error
    lines = sum(1 for line in body.decode("utf-8").splitlines() if line.strip())
    try:
        existing = find_dataset(context, args.project, args.dataset)
    except CommandError:
        existing = None  # the project does not exist yet: it is created with the dataset
    if existing is None:
        arn = create_dataset(
            context,
            args.project,
            args.dataset,
            {"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Name": key}}},
        )
        result = {
            "project": args.project,
            "dataset": args.dataset.upper(),
            "mode": "created",
            "dataset_arn": arn,
            "lines": lines,
            "stats": _stats(context, arn),
        }
        context.emit(
            result, f"created the {args.dataset.upper()} dataset of {args.project} from {lines} lines"
        )
        return 0
    data_bucket = context.resources.find(DATA_BUCKET)
    name = Path(key).name
    if not name.endswith(MANIFEST_SUFFIX):
        name += MANIFEST_SUFFIX
    target = f"{args.project}/{MANIFESTS_FOLDER}/{args.dataset}/imported-{int(time.time())}-{name}"
    s3.put_object(Bucket=data_bucket, Key=target, Body=body)
    result = {
        "project": args.project,
        "dataset": args.dataset.upper(),
        "mode": "ingested",
        "dataset_arn": existing,
        "lines": lines,
        "queued_as": f"s3://{data_bucket}/{target}",
    }
    context.emit(
        result,
        f"{lines} lines queued for ingestion as s3://{data_bucket}/{target}; "
        f"follow with `autopilot tail --project {args.project}` (entries.applied / entries.rejected)",
    )
    return 0


def copy_dataset(context: Context) -> int:
    args = context.args
    source = require_dataset(context, args.source, args.dataset)
    try:
        existing = find_dataset(context, args.project, args.dataset)
    except CommandError:
        existing = None
    if existing is not None:
        raise CommandError(
            f"{args.project} already has a {args.dataset.upper()} dataset; "
            f"`autopilot dataset reset {args.project} {args.dataset} --yes` first, or import a manifest",
            EXIT_FAILURE,
        )
    arn = create_dataset(context, args.project, args.dataset, {"DatasetArn": source})
    stats = _stats(context, arn)
    context.emit(
        {
            "project": args.project,
            "dataset": args.dataset.upper(),
            "dataset_arn": arn,
            "source": source,
            "stats": stats,
        },
        f"copied {stats.get('TotalEntries', 0)} entries from {args.source} into {args.project} "
        f"({args.dataset.upper()})",
    )
    return 0


def reset_dataset(context: Context) -> int:
    args = context.args
    dataset = f"the {args.dataset.upper()} dataset of {args.project}"
    confirmed(args, f"reset removes every entry of {dataset}", export="it")
    project = project_arn(context, args.project)
    arn = find_dataset(context, args.project, args.dataset)
    steps: list[str] = []
    if arn is not None:
        status = dataset_status(context, arn)
        if status in BUSY_DATASET:
            raise CommandError(f"the dataset is {status}; try again when it has finished", EXIT_FAILURE)
        training = training_in_progress(context, str(project["ProjectArn"]))
        if training:
            raise CommandError(
                f"version {', '.join(training)} of {args.project} is training from this dataset; "
                "reset it after the training ends (`autopilot status`)",
                EXIT_FAILURE,
            )
        context.client("rekognition").delete_dataset(DatasetArn=arn)
        wait_dataset(context, arn, gone=True)
        steps.append(f"deleted {arn}")
    else:
        steps.append("no dataset to delete")
    new_arn = create_dataset(context, args.project, args.dataset, None)
    steps.append(f"created {new_arn}")
    context.emit(
        {"project": args.project, "dataset": args.dataset.upper(), "dataset_arn": new_arn, "steps": steps},
        "\n".join(steps),
    )
    return 0


def export_dataset(context: Context) -> int:
    args = context.args
    arn = require_dataset(context, args.project, args.dataset)
    lines = list(
        iter_pages(
            context.client("rekognition").list_dataset_entries,
            "DatasetEntries",
            max_pages=10_000,
            DatasetArn=arn,
            MaxResults=100,
        )
    )
    text = "".join(line.rstrip("\n") + "\n" for line in lines)
    destination = args.to or "-"
    if destination.startswith("s3://"):
        bucket, key = parse_s3_url(destination, "--to")
        context.client("s3").put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))
    elif destination != "-":
        Path(destination).write_text(text, encoding="utf-8")
    elif not context.json:
        (context.out or sys.stdout).write(text)
        return 0
    result: dict[str, Any] = {
        "project": args.project,
        "dataset": args.dataset.upper(),
        "entries": len(lines),
        "to": destination,
    }
    if destination == "-":
        result["lines"] = lines
    context.emit(
        result,
        f"exported {len(lines)} entries of {args.project} ({args.dataset.upper()}) to {destination}",
    )
    return 0
