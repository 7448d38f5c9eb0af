"""SNS topics: lifecycle events and detections, encrypted with the stack's key, TLS only."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.constructs.storage import cloudwatch_alarm_conditions
from lambdas.common.settings import AppSettings


class Notifications(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: AppSettings, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.lifecycle_topic = self._topic("Lifecycle", "Custom Labels Autopilot lifecycle events", key)
        self.detections_topic = self._topic("Detections", "Custom Labels Autopilot detections", key)
        # Every alarm of the stack notifies the lifecycle topic. A topic policy that holds only the
        # TLS-deny statement replaces SNS's default policy, so CloudWatch must be allowed explicitly.
        self.lifecycle_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.lifecycle_topic.topic_arn],
                conditions=cloudwatch_alarm_conditions(Stack.of(self)),
            )
        )
        if settings.notification_email:
            self.lifecycle_topic.add_subscription(
                subscriptions.EmailSubscription(settings.notification_email)
            )

    def _topic(self, construct_id: str, display_name: str, key: kms.IKey) -> sns.Topic:
        topic = sns.Topic(self, construct_id, display_name=display_name, master_key=key, enforce_ssl=True)
        return topic
