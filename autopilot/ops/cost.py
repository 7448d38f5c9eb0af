"""`autopilot cost [--project P] [--since DAYS]`: what the models cost, from the app's own records.

Inference: the usage ledger that the model control state machine writes (a RUNNING and a STOPPED
record per start and stop, with the version and its inference units; lambdas/serving/usage.py)
gives the RUNNING intervals; IU-hours = hours running x inference units ("Running a trained Amazon
Rekognition Custom Labels model", Inference units), priced at --price-per-iu-hour. On AWS the same
figure is cross-checked with the CloudWatch metric InServiceInferenceUnits (AWS/Rekognition,
dimensions ProjectName and VersionName, hourly Average; "Reporting running duration and inference
units used"): the sum of the hourly averages is the IU-hours the service saw.

Training: BillableTrainingTimeInSeconds of the versions created in the period (DescribeProjectVersions),
priced at --training-price-per-hour. Prices default to the us-east-1 list prices of the time of
writing (about 4 USD per inference-unit hour, 1 USD per training hour): pass yours.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from autopilot.ops.context import Context, add_command, iter_pages, project_items
from lambdas.common import clock
from lambdas.common.constants import ITEM_USAGE_PREFIX
from lambdas.serving import usage

DEFAULT_IU_HOUR_USD = 4.0
DEFAULT_TRAINING_HOUR_USD = 1.0


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = add_command(commands, "cost", show_cost, __doc__, raw=True)
    parser.add_argument("--project", action="append", help="only this project (repeatable)")
    parser.add_argument("--since", type=float, default=7.0, help="days back from now (default 7)")
    parser.add_argument("--price-per-iu-hour", type=float, default=DEFAULT_IU_HOUR_USD)
    parser.add_argument("--training-price-per-hour", type=float, default=DEFAULT_TRAINING_HOUR_USD)


def ledger(context: Context, project: str) -> list[usage.LedgerEntry]:
    return [
        usage.LedgerEntry(
            status=item["status"]["S"],
            at=usage.parse_time(item["at"]["S"]),
            version=item.get("version", {}).get("S", "?"),
            units=int(item.get("units", {}).get("N", "1")),
            reason=item.get("reason", {}).get("S", ""),
        )
        for item in project_items(context, project, ITEM_USAGE_PREFIX)
    ]


def training_hours(context: Context, project: str, since: float) -> tuple[float, list[dict[str, Any]]]:
    rekognition = context.client("rekognition")
    found = rekognition.describe_projects(ProjectNames=[project]).get("ProjectDescriptions", [])
    if not found:
        return 0.0, []
    rows = []
    for version in iter_pages(
        rekognition.describe_project_versions,
        "ProjectVersionDescriptions",
        ProjectArn=found[0]["ProjectArn"],
        MaxResults=100,
    ):
        created = version.get("CreationTimestamp")
        if created is None or created.timestamp() < since:
            continue
        seconds = float(version.get("BillableTrainingTimeInSeconds") or 0)
        rows.append(
            {
                "version": str(version["ProjectVersionArn"]).split("/version/")[1].split("/")[0],
                "status": version.get("Status"),
                "billable_hours": seconds / 3600.0,
            }
        )
    return sum(row["billable_hours"] for row in rows), rows


def cloudwatch_iu_hours(
    context: Context, project: str, versions: set[str], since: float, now: float
) -> float | None:
    """Sum of the hourly averages of InServiceInferenceUnits; None when CloudWatch has no data."""
    total, seen = 0.0, False
    for version in sorted(versions):
        try:
            points = (
                context.client("cloudwatch")
                .get_metric_statistics(
                    Namespace="AWS/Rekognition",
                    MetricName="InServiceInferenceUnits",
                    Dimensions=[
                        {"Name": "ProjectName", "Value": project},
                        {"Name": "VersionName", "Value": version},
                    ],
                    StartTime=datetime.fromtimestamp(since, UTC),
                    EndTime=datetime.fromtimestamp(now, UTC),
                    Period=3600,
                    Statistics=["Average"],
                )
                .get("Datapoints", [])
            )
        except (ClientError, BotoCoreError):
            return None
        seen = seen or bool(points)
        total += sum(float(point["Average"]) for point in points)
    return total if seen else None


def project_cost(context: Context, project: str, since: float, now: float) -> dict[str, Any]:
    args = context.args
    intervals = usage.clip(usage.intervals(ledger(context, project), now), since, now)
    iu_hours = usage.iu_hours(intervals)
    train_hours, trainings = training_hours(context, project, since)
    versions = {item.version for item in intervals}
    return {
        "project": project,
        "iu_hours": iu_hours,
        "iu_usd": iu_hours * args.price_per_iu_hour,
        "per_day": usage.per_day(intervals),
        "intervals": [
            {
                "version": item.version,
                "units": item.units,
                "from": datetime.fromtimestamp(item.start, UTC).isoformat(),
                "to": datetime.fromtimestamp(item.end, UTC).isoformat(),
                "still_running": item.open,
                "iu_hours": item.iu_hours,
            }
            for item in intervals
        ],
        "cloudwatch_iu_hours": None
        if context.local
        else cloudwatch_iu_hours(context, project, versions, since, now),
        "training_hours": train_hours,
        "training_usd": train_hours * args.training_price_per_hour,
        "trainings": trainings,
        "total_usd": iu_hours * args.price_per_iu_hour + train_hours * args.training_price_per_hour,
    }


def show_cost(context: Context) -> int:
    """inference-unit hours and training hours per project, with a USD estimate"""

    from autopilot.ops.status import configured_projects

    args = context.args
    now = clock.now()
    since = now - args.since * 86400
    projects = args.project or configured_projects(context)
    report = [project_cost(context, project, since, now) for project in projects]

    def text() -> str:
        rows = [f"since {datetime.fromtimestamp(since, UTC):%Y-%m-%d %H:%M} UTC ({args.since:g} days)"]
        for item in report:
            check = item["cloudwatch_iu_hours"]
            rows.append(
                f"{item['project']}: {item['iu_hours']:.2f} IU-hours (~{item['iu_usd']:.2f} USD)"
                + ("" if check is None else f", CloudWatch InServiceInferenceUnits {check:.2f}")
                + f"; training {item['training_hours']:.2f} h (~{item['training_usd']:.2f} USD)"
            )
            rows += ["  " + line for line in usage.bar_chart(item["per_day"])]
        return "\n".join(rows)

    context.emit({"since": since, "until": now, "projects": report}, text)
    return 0
