"""cdk-nag acknowledgments that more than one construct needs, each with its reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct

# CDK's singleton Lambda that applies bucket notifications during deployments.
_BUCKET_NOTIFICATIONS_HANDLER_PREFIX = "BucketNotificationsHandler"


def iam5(finding: str, reason: str) -> Acknowledgment:
    """One wildcard finding, named exactly (e.g. "Resource::*"), so a new wildcard still fails synth."""
    return Acknowledgment(id=f"AwsSolutions::AwsSolutions-IAM5[{finding}]", reason=reason)


def acknowledge_iam5(construct: IConstruct, findings: dict[str, str]) -> None:
    """Acknowledges each finding -> reason of `findings` on `construct`."""
    Validations.of(construct).acknowledge(*(iam5(finding, reason) for finding, reason in findings.items()))


def acknowledge_bucket_notifications_handler(stack: Stack) -> None:
    """CDK's own bucket-notifications custom resource: not our code, and CDK fixes its policies."""
    for child in stack.node.children:
        if not child.node.id.startswith(_BUCKET_NOTIFICATIONS_HANDLER_PREFIX):
            continue
        Validations.of(child).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                reason="CDK's bucket-notifications custom resource (not our code) only writes its own logs "
                "with the basic execution role; CDK offers no way to replace it.",
            ),
            iam5(
                "Resource::*",
                "CDK's bucket-notifications custom resource calls s3:PutBucketNotification, which CDK grants "
                "on resource *; it runs only during deployments.",
            ),
        )
