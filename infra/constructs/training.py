"""Hands-off training: per-project schedules, an on-demand trigger, and the training state machine.

    EventBridge Scheduler (one schedule per project) ─┐
    EventBridge rule "Autopilot Training Requested" ──┴─> trigger Lambda (decide, lock, start)
                                                              │
    state machine: split? -> preflight -> CreateProjectVersion -> poll -> gate -> [blue/green start]
                   -> promote -> [stop old] -> retention -> release lock      (any failure -> report)
    EventBridge rule on the execution's TIMED_OUT / ABORTED / FAILED -> execution-end Lambda (backstop)

Rekognition is called directly by the state machine where no logic is needed (dataset status,
DistributeDatasetEntries, CreateProjectVersion, DescribeProjectVersions, Start/StopProjectVersion);
Lambdas carry the logic (preflight, gate, promotion, retention, failure report, lock release).
"""

from __future__ import annotations

import json
import re
from typing import Unpack

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.app import AppConstruct, AppScope
from infra.constructs.function import AutopilotFunction
from infra.constructs.nag import acknowledge_iam5
from infra.constructs.queues import dead_letter_queue
from infra.constructs.rekognition_s3 import (
    adapter_projects,
    grant_dataset_images_read,
    grant_training_output_write,
)
from infra.workflows.training import TrainingTargets, training_definition
from lambdas.common.config import FunctionEnvironment
from lambdas.common.constants import (
    ADAPTER_MANIFESTS_FOLDER,
    DETAIL_TYPE_TRAIN_REQUESTED,
    EVENT_SOURCE,
    SERVICE_TRAINING_PREFIX,
    TRAINING_OUTPUT_FOLDER,
)
from lambdas.training import naming
from lambdas.training.environment import PreflightEnvironment, TrainingEnvironment, TriggerEnvironment

HANDLERS = "lambdas.training.handlers"
REKOGNITION_ACTIONS = tuple(
    f"rekognition:{action}"
    for action in (
        "CreateProjectVersion",
        "DescribeDataset",
        "DescribeProjectVersions",
        "DistributeDatasetEntries",
        "StartProjectVersion",
        "StopProjectVersion",
        "TagResource",
    )
)


class Training(AppConstruct):
    def __init__(self, scope: Construct, construct_id: str, **app: Unpack[AppScope]) -> None:
        super().__init__(scope, construct_id, **app)
        settings, storage = self.settings, self.storage
        self._settings = settings
        self._storage = storage
        self._topic = self.notifications.lifecycle_topic
        # Every project ARN, dataset ARN and version ARN of the configured projects:
        # arn:aws:rekognition:REGION:ACCOUNT:project/NAME/...
        self.project_arns = self.rekognition_arns(self.projects)

        # Failed asynchronous invocations of the trigger (schedule or on-demand) land here.
        self.dlq = dead_letter_queue(
            self,
            "TriggerDlq",
            key=storage.key,
            holds="failed trigger invocations (schedule, on-demand rule, execution-end rule)",
        )
        self.queues: list[sqs.IQueue] = []
        self.dlqs: list[sqs.IQueue] = [self.dlq]

        common_env = TrainingEnvironment
        self.preflight_fn = self._function(
            "Preflight", "preflight", "training pre-flight checks (ListDatasetLabels)", PreflightEnvironment
        )
        self._allow_rekognition(self.preflight_fn, "DescribeDataset", "ListDatasetLabels")

        self.gate_fn = self._function("Gate", "gate", "the training evaluation gate", common_env)
        storage.state_table.grant_read_data(self.gate_fn.role)
        self._topic.grant_publish(self.gate_fn.role)
        self._allow_rekognition(self.gate_fn, "DescribeProjectVersions")
        self._allow_training_output_reads(self.gate_fn)  # evaluation summaries, tested manifests

        self.promote_fn = self._function(
            "Promote", "promote", "the promotion of a trained version", common_env
        )
        storage.state_table.grant_read_write_data(self.promote_fn.role)
        self._topic.grant_publish(self.promote_fn.role)

        self.retention_fn = self._function(
            "Retention", "retention", "the deletion of old project versions", common_env
        )
        storage.state_table.grant_read_data(self.retention_fn.role)
        self._topic.grant_publish(self.retention_fn.role)
        self._allow_rekognition(self.retention_fn, "DescribeProjectVersions", "DeleteProjectVersion")

        self.finish_fn = self._function("Finish", "finish", "the release of the training lock", common_env)
        storage.state_table.grant_read_write_data(self.finish_fn.role)

        self.failure_fn = self._function(
            "Failure", "failure", "the report of a failed training", common_env, timeout=Duration.seconds(60)
        )
        storage.state_table.grant_read_write_data(self.failure_fn.role)
        self._topic.grant_publish(self.failure_fn.role)
        self._allow_rekognition(self.failure_fn, "StopProjectVersion")
        self._allow_training_output_reads(self.failure_fn)  # manifest summary, validation manifests

        self.state_machine = self._state_machine()

        self.trigger_fn = self._function(
            "Trigger",
            "trigger",
            "the training trigger (decide, lock, start)",
            TriggerEnvironment,
            {"state_machine_arn": self.state_machine.state_machine_arn},
        )
        storage.state_table.grant_read_write_data(self.trigger_fn.role)
        storage.settings_parameter.grant_read(self.trigger_fn.role)
        self._topic.grant_publish(self.trigger_fn.role)
        self.state_machine.grant_start_execution(self.trigger_fn.role)
        self._allow_rekognition(self.trigger_fn, "DescribeDataset", "DescribeProjectVersions")
        self._allow_adapter_manifest_reads(self.trigger_fn)
        self.trigger_fn.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["rekognition:DescribeProjects"], resources=["*"])
        )
        self.trigger_fn.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.dlq), retry_attempts=2
        )

        self.execution_end_fn = self._function(
            "ExecutionEnd", "execution_end", "the clean-up of timed-out or aborted trainings", common_env
        )
        storage.state_table.grant_read_write_data(self.execution_end_fn.role)
        self._topic.grant_publish(self.execution_end_fn.role)
        # The rule's dead-letter queue only takes events EventBridge could not deliver; an invocation
        # that fails after Lambda's own retries (a lock left held) lands in the same queue.
        self.execution_end_fn.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.dlq), retry_attempts=2
        )

        self.schedules = self._schedules()
        self._acknowledge_findings()
        self.on_demand_rule = self.invoke_on(
            "OnDemand",
            self.trigger_fn,
            description="On-demand training requests (detail-type Autopilot Training Requested)",
            pattern=events.EventPattern(source=[EVENT_SOURCE], detail_type=[DETAIL_TYPE_TRAIN_REQUESTED]),
            dead_letter_queue=self.dlq,
            retry_attempts=4,
            max_event_age=Duration.hours(2),
        )
        self.execution_end_rule = self.invoke_on(
            "ExecutionEnded",
            self.execution_end_fn,
            description="Training executions that ended without their own clean-up",
            pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "stateMachineArn": [self.state_machine.state_machine_arn],
                    "status": ["FAILED", "TIMED_OUT", "ABORTED"],
                },
            ),
            dead_letter_queue=self.dlq,
            retry_attempts=4,
            max_event_age=Duration.hours(6),
        )

    # --- building blocks ---------------------------------------------------------------------
    def _function(
        self,
        construct_id: str,
        handler: str,
        description: str,
        environment: type[FunctionEnvironment],
        variables: dict[str, object] | None = None,
        timeout: Duration | None = None,
    ) -> AutopilotFunction:
        return self.function(
            f"{construct_id}Function",
            environment,
            variables,
            handler=f"{HANDLERS}.{handler}.handle",
            # "ExecutionEnd" -> "training-execution-end"
            service_name=SERVICE_TRAINING_PREFIX + re.sub(r"(?<!^)(?=[A-Z])", "-", construct_id).lower(),
            description=description,
            timeout=timeout or Duration.seconds(120),
            memory_size=256,
        )

    def _allow_rekognition(self, function: AutopilotFunction, *actions: str) -> None:
        function.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[f"rekognition:{action}" for action in actions], resources=self.project_arns
            )
        )

    def _allow_adapter_manifest_reads(self, function: AutopilotFunction) -> None:
        """s3:GetObject (HeadObject) on the adapter manifests of the CONTENT_MODERATION projects."""
        adapters = adapter_projects(self._settings)
        if not adapters:
            return
        bucket = self._storage.bucket
        function.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    bucket.arn_for_objects(f"{name}/{ADAPTER_MANIFESTS_FOLDER}/*") for name in adapters
                ],
            )
        )
        bucket_id = Stack.of(self).get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge_iam5(
            function.role,
            {
                f"Resource::<{bucket_id}.Arn>/{name}/{ADAPTER_MANIFESTS_FOLDER}/*": (
                    f"Reads the version and line count of project {name}'s adapter manifests (HeadObject)."
                )
                for name in adapters
            },
        )

    def _allow_training_output_reads(self, function: AutopilotFunction) -> None:
        """s3:GetObject on each configured project's training-output folder, nothing else."""
        bucket = self._storage.bucket
        function.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    bucket.arn_for_objects(f"{name}/{TRAINING_OUTPUT_FOLDER}/*")
                    for name in sorted(self._settings.projects)
                ],
            )
        )
        bucket_id = Stack.of(self).get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge_iam5(
            function.role,
            {
                f"Resource::<{bucket_id}.Arn>/{name}/{TRAINING_OUTPUT_FOLDER}/*": (
                    "reads the files Rekognition wrote under keys it chooses inside this project's "
                    "training-output folder"
                )
                for name in self._settings.projects
            },
        )

    # --- the state machine ---------------------------------------------------------------------
    def _state_machine(self) -> sfn.StateMachine:
        storage = self._storage
        steps = (self.preflight_fn, self.gate_fn, self.promote_fn, self.retention_fn, self.finish_fn)
        targets = TrainingTargets(
            bucket_name=storage.bucket.bucket_name,
            topic_arn=self._topic.topic_arn,
            preflight=self.preflight_fn.function.function_arn,
            gate=self.gate_fn.function.function_arn,
            promote=self.promote_fn.function.function_arn,
            retention=self.retention_fn.function.function_arn,
            finish=self.finish_fn.function.function_arn,
            failure=self.failure_fn.function.function_arn,
        )
        # The definition carries its TimeoutSeconds and Comment (infra/workflows/training.py).
        definition = training_definition(
            targets, timeout_seconds=naming.execution_timeout_seconds(self._settings)
        )
        log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_string(json.dumps(definition)),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        # The Rekognition actions of the definition's aws-sdk tasks (TagResource: the Tags of
        # CreateProjectVersion), on the configured projects only; the Lambda steps it invokes.
        machine.role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(REKOGNITION_ACTIONS), resources=self.project_arns)
        )
        for function in (*steps, self.failure_fn):
            function.function.grant_invoke(machine.role)
        # CreateProjectVersion and DistributeDatasetEntries read the dataset images, and training
        # writes its output, with the caller's permissions: the guide's S3 actions for each use.
        projects = sorted(self._settings.projects)
        grant_dataset_images_read(machine.role, storage.bucket, projects)
        grant_training_output_write(machine.role, storage.bucket, projects)
        # The sns:publish tasks publish to the lifecycle topic, which is encrypted with the stack key:
        # sns:Publish alone is refused (KMS access denied), so grant the key use as well.
        self._topic.grant_publish(machine.role)
        return machine

    def _schedules(self) -> list[scheduler.Schedule]:
        # One role for the schedules: it may invoke the trigger and send to its dead-letter queue.
        self.schedule_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
            description="Lets the training schedules invoke only the training trigger",
        )
        self._storage.key.grant(self.schedule_role, "kms:GenerateDataKey", "kms:Decrypt")
        schedules: list[scheduler.Schedule] = []
        for index, (name, project) in enumerate(sorted(self._settings.projects.items())):
            schedules.append(
                scheduler.Schedule(
                    self,
                    f"Schedule{index}",
                    description=f"Training check of project {name}"[:512],
                    schedule=scheduler.ScheduleExpression.expression(project.training_schedule),
                    target=scheduler_targets.LambdaInvoke(
                        self.trigger_fn.function,
                        input=scheduler.ScheduleTargetInput.from_object(
                            {"project": name, "force": False, "source": "schedule"}
                        ),
                        role=self.schedule_role,
                        dead_letter_queue=self.dlq,
                        retry_attempts=3,
                        max_event_age=Duration.hours(1),
                    ),
                )
            )
        return schedules

    # --- cdk-nag -------------------------------------------------------------------------------
    def _acknowledge_findings(self) -> None:
        """Each acknowledgment names one finding and why the permission cannot be narrower."""
        stack = Stack.of(self)
        rekognition_reason = (
            "Rekognition project, dataset and version ARNs end in creation timestamps and version "
            "names chosen at run time; the wildcard is scoped to one configured project name"
        )
        project_findings = {
            f"Resource::arn:<AWS::Partition>:rekognition:<AWS::Region>:<AWS::AccountId>:project/{name}/*": (
                rekognition_reason
            )
            for name in self._settings.projects
        }
        key_reason = "SNS publish to the lifecycle topic encrypted with the stack key; limited to that key"
        for function in self.functions:
            findings = {
                "Resource::*": "X-Ray trace segments (active tracing) accept only '*'"
                + (
                    "; rekognition:DescribeProjects has no resource-level permission"
                    if function is self.trigger_fn
                    else ""
                ),
                "Action::kms:GenerateDataKey*": key_reason,
                **project_findings,
            }
            if function in (self.trigger_fn, self.execution_end_fn):
                findings["Action::kms:ReEncrypt*"] = (
                    "the on-failure destination queue is encrypted with the stack key; CDK's SQS send "
                    "grant on that one key"
                )
            acknowledge_iam5(function.role, findings)
        bucket_id = stack.get_logical_id(self._storage.bucket.node.default_child)  # type: ignore[arg-type]
        machine_findings = {
            "Resource::*": "X-Ray trace segments and CloudWatch Logs log delivery accept only '*'",
            **project_findings,
            **{
                f"Resource::<{bucket_id}.Arn>/{name}/{TRAINING_OUTPUT_FOLDER}/*": (
                    "Rekognition writes training output under keys it chooses, inside this project's "
                    "training-output folder"
                )
                for name in self._settings.projects
            },
            **{
                f"Resource::<{bucket_id}.Arn>/{name}/*": (
                    "CreateProjectVersion reads the dataset images of this project with the caller's "
                    "permissions; image keys are chosen by the uploaders below the project prefix"
                )
                for name in self._settings.projects
            },
            "Action::kms:GenerateDataKey*": key_reason,
            **{
                f"Resource::<{_logical_id(function)}.Arn>:*": (
                    "the state machine invokes the function and its versions; only the training functions"
                )
                for function in self.functions
            },
        }
        acknowledge_iam5(self.state_machine.role, machine_findings)
        acknowledge_iam5(
            self.schedule_role,
            {
                f"Resource::<{_logical_id(self.trigger_fn)}.Arn>:*": (
                    "the schedules' role may invoke only the training trigger function (and its versions)"
                )
            },
        )


def _logical_id(function: AutopilotFunction) -> str:
    return Stack.of(function).get_logical_id(function.function.node.default_child)  # type: ignore[arg-type]
