"""S3 buckets and their notifications (Custom::S3BucketNotifications, filters included): moto
delivers S3 -> SQS / SNS itself; a Lambda destination is fed through a tap queue with the same filter."""

from __future__ import annotations

from typing import Any

from autopilot.local import s3_events
from autopilot.local.runtime.context import StackContext
from autopilot.local.template import physical_name
from autopilot.local.wiring import Target

BUCKET_TYPE = "AWS::S3::Bucket"
NOTIFICATIONS_TYPE = "Custom::S3BucketNotifications"


def assign_ids(ctx: StackContext) -> None:
    r = ctx.resolver
    for lid, res in r.resources_of_type(BUCKET_TYPE).items():
        props = res.get("Properties") or {}
        name = str(props.get("BucketName") or physical_name(lid, 63).lower())
        r.physical_ids[lid] = name
        r.attributes[(lid, "Arn")] = f"arn:aws:s3:::{name}"
        r.attributes[(lid, "DomainName")] = f"{name}.s3.amazonaws.com"
        r.attributes[(lid, "RegionalDomainName")] = f"{name}.s3.{ctx.region}.amazonaws.com"


def create_buckets(ctx: StackContext) -> None:
    s3 = ctx.client("s3")
    for lid, res in ctx.of_type(BUCKET_TYPE).items():
        name = ctx.resolver.physical_ids[lid]
        kwargs: dict[str, Any] = {"Bucket": name}
        if ctx.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": ctx.region}
        s3.create_bucket(**kwargs)
        versioning = ((res.get("Properties") or {}).get("VersioningConfiguration") or {}).get("Status")
        if versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})


def create_notifications(ctx: StackContext) -> None:
    s3_events.install()  # versionId, sequencer and eTag in the records, as AWS sends them
    s3 = ctx.client("s3")
    for lid in ctx.of_type(NOTIFICATIONS_TYPE):
        props = ctx.resolver.resolved_properties(lid)
        config = props.get("NotificationConfiguration") or {}
        queue_configs = list(config.get("QueueConfigurations") or [])
        for lambda_config in config.get("LambdaFunctionConfigurations") or []:
            tap = ctx.tap_queue("s3-lambda", lid, [Target(arn=str(lambda_config["LambdaFunctionArn"]))])
            queue_configs.append(
                {
                    "QueueArn": ctx.queue_arn(tap.queue_url),
                    "Events": lambda_config["Events"],
                    **({"Filter": lambda_config["Filter"]} if "Filter" in lambda_config else {}),
                }
            )
        notification: dict[str, Any] = {}
        if queue_configs:
            notification["QueueConfigurations"] = queue_configs
        if config.get("TopicConfigurations"):
            notification["TopicConfigurations"] = config["TopicConfigurations"]
        if "EventBridgeConfiguration" in config:
            notification["EventBridgeConfiguration"] = {}
        s3.put_bucket_notification_configuration(
            Bucket=str(props["BucketName"]), NotificationConfiguration=notification
        )
