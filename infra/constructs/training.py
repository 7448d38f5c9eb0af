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

import re
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.constructs.function import AutopilotFunction
from infra.constructs.nag import acknowledge_iam5
from infra.constructs.notifications import Notifications
from infra.constructs.queues import dead_letter_queue
from infra.constructs.rekognition_s3 import grant_dataset_images_read, grant_training_output_write
from infra.constructs.storage import Storage
from infra.step_functions_errors import busy_errors, transient_errors
from lambdas.common.constants import (
    ATTR_EVENT_TYPE,
    ATTR_PROJECT,
    DETAIL_TYPE_TRAIN_REQUESTED,
    ENV_LIFECYCLE_TOPIC,
    ENV_SETTINGS_PARAMETER,
    ENV_STATE_TABLE,
    ENV_TRAINING_STATE_MACHINE,
    EVENT_MODEL_RUNNING,
    EVENT_MODEL_STARTING,
    EVENT_MODEL_STOP_FAILED,
    EVENT_MODEL_STOPPING,
    EVENT_SOURCE,
    EVENT_TRAINING_DATASET_SPLIT,
    EVENT_TRAINING_STARTED,
    FEATURE_CONTENT_MODERATION,
    SERVICE_TRAINING_PREFIX,
    TRAINING_OUTPUT_FOLDER,
    VERSION_TAG_MANAGED_BY,
)
from lambdas.common.settings import AppSettings
from lambdas.training import naming

HANDLERS = "lambdas.training.handlers"
JsonPath = sfn.JsonPath


def _listed_versions() -> dict[str, Any]:
    """ResultSelector of DescribeProjectVersions: the list and its length, nothing selected yet.

    The list of one version name is empty once the version is gone (deleted, or its project).
    Selecting `ProjectVersionDescriptions[0]` from an empty list raises States.Runtime, which no
    Catch catches; so the list is counted first and a Choice either picks the element or ends in
    the notified failure path.
    """
    return {
        "versions": JsonPath.list_at("$.ProjectVersionDescriptions"),
        "count": JsonPath.array_length(JsonPath.list_at("$.ProjectVersionDescriptions")),
    }


class Training(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: AppSettings,
        storage: Storage,
        notifications: Notifications,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self._storage = storage
        self._topic = notifications.lifecycle_topic
        stack = Stack.of(self)
        # Every project ARN, dataset ARN and version ARN of the configured projects:
        # arn:aws:rekognition:REGION:ACCOUNT:project/NAME/...
        self.project_arns = [
            stack.format_arn(service="rekognition", resource="project", resource_name=f"{name}/*")
            for name in sorted(settings.projects)
        ]

        # Failed asynchronous invocations of the trigger (schedule or on-demand) land here.
        self.dlq = dead_letter_queue(
            self,
            "TriggerDlq",
            key=storage.key,
            holds="failed trigger invocations (schedule, on-demand rule, execution-end rule)",
        )
        self.queues: list[sqs.IQueue] = []
        self.dlqs: list[sqs.IQueue] = [self.dlq]

        self.functions: list[AutopilotFunction] = []
        common_env = {
            ENV_STATE_TABLE: storage.state_table.table_name,
            ENV_LIFECYCLE_TOPIC: self._topic.topic_arn,
        }
        self.preflight_fn = self._function(
            "Preflight", "preflight", "training pre-flight checks (ListDatasetLabels)", common_env
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
            {
                **common_env,
                ENV_SETTINGS_PARAMETER: storage.settings_parameter.parameter_name,
                ENV_TRAINING_STATE_MACHINE: self.state_machine.state_machine_arn,
            },
        )
        storage.state_table.grant_read_write_data(self.trigger_fn.role)
        storage.settings_parameter.grant_read(self.trigger_fn.role)
        self._topic.grant_publish(self.trigger_fn.role)
        self.state_machine.grant_start_execution(self.trigger_fn.role)
        self._allow_rekognition(self.trigger_fn, "DescribeDataset")
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
        self.on_demand_rule = events.Rule(
            self,
            "OnDemand",
            description="On-demand training requests (detail-type Autopilot Training Requested)",
            event_pattern=events.EventPattern(
                source=[EVENT_SOURCE], detail_type=[DETAIL_TYPE_TRAIN_REQUESTED]
            ),
            targets=[
                events_targets.LambdaFunction(
                    self.trigger_fn.function,
                    dead_letter_queue=self.dlq,
                    retry_attempts=4,
                    max_event_age=Duration.hours(2),
                )
            ],
        )
        self.execution_end_rule = events.Rule(
            self,
            "ExecutionEnded",
            description="Training executions that ended without their own clean-up",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "stateMachineArn": [self.state_machine.state_machine_arn],
                    "status": ["FAILED", "TIMED_OUT", "ABORTED"],
                },
            ),
            targets=[
                events_targets.LambdaFunction(
                    self.execution_end_fn.function,
                    dead_letter_queue=self.dlq,
                    retry_attempts=4,
                    max_event_age=Duration.hours(6),
                )
            ],
        )

    # --- building blocks ---------------------------------------------------------------------
    def _function(
        self,
        construct_id: str,
        handler: str,
        description: str,
        environment: dict[str, str],
        timeout: Duration | None = None,
    ) -> AutopilotFunction:
        function = AutopilotFunction(
            self,
            f"{construct_id}Function",
            handler=f"{HANDLERS}.{handler}.handle",
            # "ExecutionEnd" -> "training-execution-end"
            service_name=SERVICE_TRAINING_PREFIX + re.sub(r"(?<!^)(?=[A-Z])", "-", construct_id).lower(),
            description=description,
            environment=environment,
            timeout=timeout or Duration.seconds(120),
            memory_size=256,
        )
        self.functions.append(function)
        return function

    def _allow_rekognition(self, function: AutopilotFunction, *actions: str) -> None:
        function.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[f"rekognition:{action}" for action in actions], resources=self.project_arns
            )
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

    def _rekognition(
        self,
        construct_id: str,
        action: str,
        parameters: dict[str, Any],
        *,
        result_selector: dict[str, Any] | None = None,
        result_path: str | None = None,
        extra_actions: tuple[str, ...] = (),
        comment: str | None = None,
        retry_busy: bool = False,
    ) -> tasks.CallAwsService:
        iam_action = f"rekognition:{action[0].upper()}{action[1:]}"
        task = tasks.CallAwsService(
            self,
            construct_id,
            service="rekognition",
            action=action,
            parameters=parameters,
            iam_resources=self.project_arns,
            iam_action=iam_action,
            additional_iam_statements=[
                iam.PolicyStatement(
                    actions=[f"rekognition:{extra}" for extra in extra_actions], resources=self.project_arns
                )
            ]
            if extra_actions
            else None,
            result_selector=result_selector,
            result_path=result_path if result_path is not None else JsonPath.DISCARD,
            comment=comment,
        )
        task.add_retry(
            errors=transient_errors(),
            interval=Duration.seconds(5),
            max_attempts=5,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        if retry_busy:
            # A dataset update started after the trigger looked (ingestion): wait for it, bounded.
            task.add_retry(
                errors=busy_errors(),
                interval=Duration.seconds(60),
                max_attempts=5,
                backoff_rate=2,
            )
        return task

    def _invoke(
        self, construct_id: str, function: AutopilotFunction, payload: dict[str, Any], result_path: str
    ) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            construct_id,
            lambda_function=function.function,
            payload=sfn.TaskInput.from_object(payload),
            payload_response_only=True,
            retry_on_service_exceptions=True,
            result_path=result_path,
        )
        return task

    def _publish(self, construct_id: str, event_type: str, detail: dict[str, Any]) -> tasks.SnsPublish:
        """A lifecycle message in the same shape as lambdas.common.events.lifecycle_message."""
        task = tasks.SnsPublish(
            self,
            construct_id,
            topic=self._topic,
            message=sfn.TaskInput.from_object(
                {
                    "source": EVENT_SOURCE,
                    "type": event_type,
                    "project": JsonPath.string_at("$.project"),
                    "time": JsonPath.string_at("$$.State.EnteredTime"),
                    "detail": {**detail, "execution_arn": JsonPath.string_at("$.execution.arn")},
                }
            ),
            message_attributes={
                ATTR_EVENT_TYPE: tasks.MessageAttribute(value=event_type),
                ATTR_PROJECT: tasks.MessageAttribute(value=JsonPath.string_at("$.project")),
            },
            result_path=JsonPath.DISCARD,
        )
        task.add_retry(
            errors=["SNS.SdkClientException", "SNS.InternalErrorException", "SNS.ThrottledException"]
        )
        return task

    @staticmethod
    def _fail_with(scope: Construct, construct_id: str, error: str) -> sfn.Pass:
        return sfn.Pass(
            scope,
            construct_id,
            result=sfn.Result.from_object({"Error": error, "Cause": error}),
            result_path="$.error",
        )

    def _listed(
        self, construct_id: str, path: str, vanished: sfn.IChainable, pick: sfn.IChainable
    ) -> sfn.Choice:
        """Branches on the number of versions DescribeProjectVersions listed (see _listed_versions)."""
        return (
            sfn.Choice(self, construct_id)
            .when(sfn.Condition.number_equals(f"{path}.count", 0), vanished)
            .otherwise(pick)
        )

    def _pick_version(self, construct_id: str, path: str) -> sfn.Pass:
        """Keeps the one listed version as `<path>.version`; reached only when the list is not empty."""
        return sfn.Pass(
            self,
            construct_id,
            parameters={"version": JsonPath.object_at(f"{path}.versions[0]")},
            result_path=path,
        )

    def _version_vanished(self, construct_id: str, while_: str) -> sfn.Pass:
        """The error the failure report turns into training.failed when the version is no longer listed."""
        return sfn.Pass(
            self,
            construct_id,
            parameters={
                "Error": "VERSION_NOT_FOUND",
                "Cause": JsonPath.format(
                    "DescribeProjectVersions no longer lists version {} of project {}: it was deleted "
                    f"while {while_}",
                    JsonPath.string_at("$.version_name"),
                    JsonPath.string_at("$.project"),
                ),
            },
            result_path="$.error",
        )

    @staticmethod
    def _count(scope: Construct, construct_id: str) -> sfn.Pass:
        return sfn.Pass(
            scope,
            construct_id,
            parameters={"count": JsonPath.math_add(JsonPath.number_at("$.polls.count"), 1)},
            result_path="$.polls",
        )

    # --- the state machine ---------------------------------------------------------------------
    def _state_machine(self) -> sfn.StateMachine:
        storage = self._storage

        # Failure path: one Lambda turns the error into a reason, stops an unpromoted new version,
        # publishes training.failed and releases the lock; then the execution fails.
        failed = sfn.Fail(
            self, "TrainingFailed", error="TrainingFailed", cause_path=JsonPath.string_at("$.failure.reason")
        )
        report_failure = tasks.LambdaInvoke(
            self,
            "ReportFailureTask",
            lambda_function=self.failure_fn.function,
            payload=sfn.TaskInput.from_object({"state": JsonPath.entire_payload}),
            payload_response_only=True,
            retry_on_service_exceptions=True,
            result_path="$.failure",
        )
        report_failure.add_retry(errors=["States.ALL"], interval=Duration.seconds(2), max_attempts=3)
        unreported = sfn.Fail(
            self,
            "FailureNotReported",
            error="FailureNotReported",
            cause="the failure report could not be sent; the execution-end handler reports it",
        )
        report_failure.add_catch(unreported, errors=["States.ALL"], result_path="$.report_error")
        report_failure.next(failed)

        def guard(task: sfn.TaskStateBase) -> sfn.TaskStateBase:
            task.add_catch(report_failure, errors=["States.ALL"], result_path="$.error")
            return task

        start = sfn.Pass(
            self,
            "Start",
            parameters={
                "arn": JsonPath.string_at("$$.Execution.Id"),
                "name": JsonPath.string_at("$$.Execution.Name"),
            },
            result_path="$.execution",
        )

        # 1. Split when the TEST dataset is empty.
        describe_test = guard(
            self._rekognition(
                "DescribeTestDataset",
                "describeDataset",
                {"DatasetArn": JsonPath.string_at("$.test_dataset_arn")},
                result_selector={"stats": JsonPath.object_at("$.DatasetDescription.DatasetStats")},
                result_path="$.test_dataset",
            )
        )
        distribute = guard(
            self._rekognition(
                "DistributeEntries",
                "distributeDatasetEntries",
                {
                    "Datasets": [
                        {"Arn": JsonPath.string_at("$.train_dataset_arn")},
                        {"Arn": JsonPath.string_at("$.test_dataset_arn")},
                    ]
                },
                comment="Moves 20% of TRAIN into the empty TEST dataset",
                retry_busy=True,
            )
        )
        split_published = guard(
            self._publish(
                "PublishSplit",
                EVENT_TRAINING_DATASET_SPLIT,
                {"reason": "the TEST dataset is empty: 20% of TRAIN moves to TEST"},
            )
        )
        split_init = sfn.Pass(
            self, "InitSplitPolls", result=sfn.Result.from_object({"count": 0}), result_path="$.polls"
        )
        split_wait = sfn.Wait(self, "WaitSplit", time=sfn.WaitTime.seconds_path("$.settings.poll_seconds"))
        describe_train_split = guard(
            self._rekognition(
                "DescribeTrainAfterSplit",
                "describeDataset",
                {"DatasetArn": JsonPath.string_at("$.train_dataset_arn")},
                result_selector={"Status": JsonPath.string_at("$.DatasetDescription.Status")},
                result_path="$.split.train",
            )
        )
        describe_test_split = guard(
            self._rekognition(
                "DescribeTestAfterSplit",
                "describeDataset",
                {"DatasetArn": JsonPath.string_at("$.test_dataset_arn")},
                result_selector={"Status": JsonPath.string_at("$.DatasetDescription.Status")},
                result_path="$.split.test",
            )
        )
        split_count = self._count(self, "CountSplitPoll")
        split_failed = self._fail_with(self, "SplitFailed", "SPLIT_FAILED").next(report_failure)
        split_timeout = self._fail_with(self, "SplitTimeout", "SPLIT_TIMEOUT").next(report_failure)

        # 2. Preflight.
        preflight = guard(
            self._invoke(
                "Preflight",
                self.preflight_fn,
                {
                    "project": JsonPath.string_at("$.project"),
                    "train_dataset_arn": JsonPath.string_at("$.train_dataset_arn"),
                    "test_dataset_arn": JsonPath.string_at("$.test_dataset_arn"),
                    "feature": JsonPath.string_at("$.settings.feature"),
                },
                "$.preflight",
            )
        )

        # 3. CreateProjectVersion (FeatureConfig only for moderation adapters with a threshold).
        create_common = {
            "ProjectArn": JsonPath.string_at("$.project_arn"),
            "VersionName": JsonPath.string_at("$.version_name"),
            "OutputConfig": {
                "S3Bucket": storage.bucket.bucket_name,
                "S3KeyPrefix": JsonPath.string_at("$.output_prefix"),
            },
            "VersionDescription": JsonPath.string_at("$.preflight.description"),
            "Tags": {
                VERSION_TAG_MANAGED_BY: EVENT_SOURCE,
                "autopilot-execution": JsonPath.string_at("$$.Execution.Name"),
            },
        }
        created_selector = {"ProjectVersionArn": JsonPath.string_at("$.ProjectVersionArn")}
        create_model = guard(
            self._rekognition(
                "CreateProjectVersion",
                "createProjectVersion",
                create_common,
                result_selector=created_selector,
                result_path="$.created",
                extra_actions=("TagResource",),
                retry_busy=True,
            )
        )
        create_adapter = guard(
            self._rekognition(
                "CreateAdapterVersion",
                "createProjectVersion",
                {
                    **create_common,
                    "FeatureConfig": {
                        "ContentModeration": {
                            "ConfidenceThreshold": JsonPath.number_at(
                                "$.settings.moderation_confidence_threshold"
                            )
                        }
                    },
                },
                result_selector=created_selector,
                result_path="$.created",
                extra_actions=("TagResource",),
                retry_busy=True,
            )
        )
        started_published = guard(
            self._publish(
                "PublishStarted",
                EVENT_TRAINING_STARTED,
                {
                    "version_name": JsonPath.string_at("$.version_name"),
                    "version_arn": JsonPath.string_at("$.created.ProjectVersionArn"),
                    "description": JsonPath.string_at("$.preflight.description"),
                    "snapshot": JsonPath.object_at("$.preflight.snapshot"),
                    "trigger": JsonPath.object_at("$.trigger"),
                },
            )
        )

        # 4. Bounded polling of the training.
        train_init = sfn.Pass(
            self, "InitTrainingPolls", result=sfn.Result.from_object({"count": 0}), result_path="$.polls"
        )
        train_wait = sfn.Wait(self, "WaitTraining", time=sfn.WaitTime.seconds_path("$.settings.poll_seconds"))
        describe_version = guard(
            self._rekognition(
                "DescribeTraining",
                "describeProjectVersions",
                {
                    "ProjectArn": JsonPath.string_at("$.project_arn"),
                    "VersionNames": JsonPath.array(JsonPath.string_at("$.version_name")),
                },
                result_selector=_listed_versions(),
                result_path="$.training",
            )
        )
        training_vanished = self._version_vanished("TrainingVersionVanished", "training").next(report_failure)
        pick_trained = self._pick_version("PickTrainedVersion", "$.training")
        train_count = self._count(self, "CountTrainingPoll")
        training_failed = self._fail_with(self, "TrainingFailedStatus", "TRAINING_FAILED").next(
            report_failure
        )
        training_timeout = self._fail_with(self, "TrainingTimeout", "TRAINING_TIMEOUT").next(report_failure)

        # 5. Gate.
        gate = guard(
            self._invoke(
                "EvaluationGate",
                self.gate_fn,
                {
                    "project": JsonPath.string_at("$.project"),
                    "project_arn": JsonPath.string_at("$.project_arn"),
                    "version": JsonPath.object_at("$.training.version"),
                    "settings": JsonPath.object_at("$.settings"),
                },
                "$.gate",
            )
        )

        # 6. Blue/green: start the new version when the old one is serving.
        start_new = guard(
            self._rekognition(
                "StartNewVersion",
                "startProjectVersion",
                {
                    "ProjectVersionArn": JsonPath.string_at("$.created.ProjectVersionArn"),
                    "MinInferenceUnits": JsonPath.number_at("$.settings.min_inference_units"),
                    "MaxInferenceUnits": JsonPath.number_at("$.settings.max_inference_units"),
                },
                result_selector={"Status": JsonPath.string_at("$.Status")},
                result_path="$.bluegreen",
            )
        )
        starting_published = guard(
            self._publish(
                "PublishModelStarting",
                EVENT_MODEL_STARTING,
                {
                    "version_arn": JsonPath.string_at("$.created.ProjectVersionArn"),
                    "reason": "blue/green promotion: the production version is running",
                },
            )
        )
        start_init = sfn.Pass(
            self, "InitStartPolls", result=sfn.Result.from_object({"count": 0}), result_path="$.polls"
        )
        start_wait = sfn.Wait(
            self, "WaitNewVersion", time=sfn.WaitTime.seconds_path("$.settings.model_poll_seconds")
        )
        describe_new = guard(
            self._rekognition(
                "DescribeNewVersion",
                "describeProjectVersions",
                {
                    "ProjectArn": JsonPath.string_at("$.project_arn"),
                    "VersionNames": JsonPath.array(JsonPath.string_at("$.version_name")),
                },
                result_selector=_listed_versions(),
                result_path="$.bluegreen",
            )
        )
        new_vanished = self._version_vanished("NewVersionVanished", "starting").next(report_failure)
        pick_new = self._pick_version("PickNewVersion", "$.bluegreen")
        start_count = self._count(self, "CountStartPoll")
        start_failed = self._fail_with(self, "StartFailed", "START_FAILED").next(report_failure)
        start_timeout = self._fail_with(self, "StartTimeout", "START_TIMEOUT").next(report_failure)
        running_published = guard(
            self._publish(
                "PublishModelRunning",
                EVENT_MODEL_RUNNING,
                {"version_arn": JsonPath.string_at("$.created.ProjectVersionArn")},
            )
        )

        # 7. Promotion, stop of the old version, retention, lock release.
        promote = guard(
            self._invoke(
                "Promote",
                self.promote_fn,
                {
                    "project": JsonPath.string_at("$.project"),
                    "version_arn": JsonPath.string_at("$.created.ProjectVersionArn"),
                    "version_name": JsonPath.string_at("$.version_name"),
                    "f1_score": JsonPath.number_at("$.gate.f1_score"),
                    "production": JsonPath.object_at("$.gate.production"),
                    "snapshot": JsonPath.object_at("$.preflight.snapshot"),
                    "execution_arn": JsonPath.string_at("$.execution.arn"),
                    "reason": JsonPath.string_at("$.gate.reason"),
                },
                "$.promotion",
            )
        )
        # The promotion stands even if the old version cannot be stopped (e.g. it is already
        # stopping): a person is told, the training is not reported as failed.
        stop_old = self._rekognition(
            "StopOldVersion",
            "stopProjectVersion",
            {"ProjectVersionArn": JsonPath.string_at("$.gate.production.version_arn")},
        )
        stop_failed_published = guard(
            self._publish(
                "PublishOldStopFailed",
                EVENT_MODEL_STOP_FAILED,
                {
                    "version_arn": JsonPath.string_at("$.gate.production.version_arn"),
                    "error": JsonPath.string_at("$.stop_error.Error"),
                    "cause": JsonPath.string_at("$.stop_error.Cause"),
                    "reason": "blue/green promotion done, but the replaced version could not be stopped; "
                    "stop it by hand if it is still running",
                },
            )
        )
        stopping_published = guard(
            self._publish(
                "PublishOldStopping",
                EVENT_MODEL_STOPPING,
                {
                    "version_arn": JsonPath.string_at("$.gate.production.version_arn"),
                    "reason": "blue/green promotion: replaced by the new production version",
                },
            )
        )

        def retention(construct_id: str) -> tasks.LambdaInvoke:
            task = self._invoke(
                construct_id,
                self.retention_fn,
                {
                    "project": JsonPath.string_at("$.project"),
                    "project_arn": JsonPath.string_at("$.project_arn"),
                    "retain_versions": JsonPath.number_at("$.settings.retain_versions"),
                    "protect": JsonPath.array(JsonPath.string_at("$.created.ProjectVersionArn")),
                },
                "$.retention",
            )
            return task

        def finish(construct_id: str, outcome: str, done: sfn.IChainable) -> tasks.LambdaInvoke:
            task = self._invoke(
                construct_id,
                self.finish_fn,
                {
                    "project": JsonPath.string_at("$.project"),
                    "lock_token": JsonPath.string_at("$.lock_token"),
                    "outcome": outcome,
                    "reason": JsonPath.string_at("$.gate.reason"),
                },
                "$.finish",
            )
            task.add_retry(errors=["States.ALL"], interval=Duration.seconds(2), max_attempts=3)
            task.add_catch(done, errors=["States.ALL"], result_path="$.finish_error")
            task.next(done)
            return task

        # Compact outputs: the execution result names the outcome, not every intermediate response.
        def summary(construct_id: str, outcome: str) -> sfn.Pass:
            return sfn.Pass(
                self,
                construct_id,
                parameters={
                    "project": JsonPath.string_at("$.project"),
                    "outcome": outcome,
                    "version_name": JsonPath.string_at("$.version_name"),
                    "version_arn": JsonPath.string_at("$.created.ProjectVersionArn"),
                    "gate": JsonPath.object_at("$.gate"),
                },
            )

        promoted_done = summary("PromotedSummary", "PROMOTED").next(sfn.Succeed(self, "Promoted"))
        rejected_done = summary("RejectedSummary", "REJECTED").next(sfn.Succeed(self, "Rejected"))
        finish_promoted = finish("ReleasePromoted", "PROMOTED", promoted_done)
        finish_rejected = finish("ReleaseRejected", "REJECTED", rejected_done)
        # A failed clean-up does not undo a promotion: record it and finish.
        retention_promoted = retention("RetentionAfterPromotion")
        retention_promoted.add_catch(finish_promoted, errors=["States.ALL"], result_path="$.retention_error")
        retention_promoted.next(finish_promoted)
        retention_rejected = retention("RetentionAfterRejection")
        retention_rejected.add_catch(finish_rejected, errors=["States.ALL"], result_path="$.retention_error")
        retention_rejected.next(finish_rejected)

        # --- wiring ---------------------------------------------------------------------------
        promote.next(
            sfn.Choice(self, "OldVersionServing?")
            .when(
                sfn.Condition.boolean_equals("$.gate.old_running", True),
                stop_old.next(stopping_published).next(retention_promoted),
            )
            .otherwise(retention_promoted)
        )
        stop_old.add_catch(stop_failed_published, errors=["States.ALL"], result_path="$.stop_error")
        stop_failed_published.next(retention_promoted)
        start_new.next(starting_published).next(start_init).next(start_wait).next(describe_new).next(
            self._listed("NewVersionListed?", "$.bluegreen", new_vanished, pick_new)
        )
        pick_new.next(
            sfn.Choice(self, "NewVersionRunning?")
            .when(
                sfn.Condition.string_equals("$.bluegreen.version.Status", "RUNNING"),
                running_published.next(promote),
            )
            .when(sfn.Condition.string_equals("$.bluegreen.version.Status", "FAILED"), start_failed)
            .otherwise(
                start_count.next(
                    sfn.Choice(self, "StartPollsLeft?")
                    .when(
                        sfn.Condition.number_greater_than_equals_json_path(
                            "$.polls.count", "$.settings.max_model_polls"
                        ),
                        start_timeout,
                    )
                    .otherwise(start_wait)
                )
            )
        )
        gate.next(
            sfn.Choice(self, "Promote?")
            .when(
                sfn.Condition.string_equals("$.gate.decision", "PROMOTE"),
                sfn.Choice(self, "BlueGreen?")
                .when(sfn.Condition.boolean_equals("$.gate.old_running", True), start_new)
                .otherwise(promote),
            )
            .otherwise(retention_rejected)
        )
        train_init.next(train_wait).next(describe_version).next(
            self._listed("TrainingVersionListed?", "$.training", training_vanished, pick_trained)
        )
        pick_trained.next(
            sfn.Choice(self, "TrainingStatus?")
            .when(sfn.Condition.string_equals("$.training.version.Status", "TRAINING_COMPLETED"), gate)
            .when(
                sfn.Condition.string_equals("$.training.version.Status", "TRAINING_FAILED"), training_failed
            )
            .otherwise(
                train_count.next(
                    sfn.Choice(self, "TrainingPollsLeft?")
                    .when(
                        sfn.Condition.number_greater_than_equals_json_path(
                            "$.polls.count", "$.settings.max_polls"
                        ),
                        training_timeout,
                    )
                    .otherwise(train_wait)
                )
            )
        )
        create_model.next(started_published)
        create_adapter.next(started_published)
        started_published.next(train_init)
        preflight.next(
            sfn.Choice(self, "AdapterWithThreshold?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals("$.settings.feature", FEATURE_CONTENT_MODERATION),
                    sfn.Condition.is_numeric("$.settings.moderation_confidence_threshold"),
                ),
                create_adapter,
            )
            .otherwise(create_model)
        )
        split_both_complete = sfn.Condition.and_(
            sfn.Condition.string_equals("$.split.train.Status", "UPDATE_COMPLETE"),
            sfn.Condition.string_equals("$.split.test.Status", "UPDATE_COMPLETE"),
        )
        split_any_failed = sfn.Condition.or_(
            *[
                sfn.Condition.string_equals(f"$.split.{kind}.Status", status)
                for kind in ("train", "test")
                for status in ("UPDATE_FAILED", "CREATE_FAILED")
            ]
        )
        distribute.next(split_published).next(split_init).next(split_wait).next(describe_train_split).next(
            describe_test_split
        ).next(
            sfn.Choice(self, "SplitComplete?")
            .when(split_both_complete, preflight)
            .when(split_any_failed, split_failed)
            .otherwise(
                split_count.next(
                    sfn.Choice(self, "SplitPollsLeft?")
                    .when(
                        sfn.Condition.number_greater_than_equals_json_path(
                            "$.polls.count", "$.settings.max_split_polls"
                        ),
                        split_timeout,
                    )
                    .otherwise(split_wait)
                )
            )
        )
        test_empty = sfn.Condition.or_(
            sfn.Condition.is_not_present("$.test_dataset.stats.TotalEntries"),
            sfn.Condition.number_equals("$.test_dataset.stats.TotalEntries", 0),
        )
        definition = start.next(describe_test).next(
            sfn.Choice(self, "TestDatasetEmpty?").when(test_empty, distribute).otherwise(preflight)
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
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.seconds(naming.execution_timeout_seconds(self._settings)),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            comment="Custom Labels Autopilot: split, preflight, train, evaluate, promote, clean up",
        )
        # CreateProjectVersion and DistributeDatasetEntries read the dataset images, and training
        # writes its output, with the caller's permissions: the guide's S3 actions for each use.
        projects = sorted(self._settings.projects)
        grant_dataset_images_read(machine.role, storage.bucket, projects)
        grant_training_output_write(machine.role, storage.bucket, projects)
        # The SnsPublish tasks publish to the lifecycle topic, which is encrypted with the stack key:
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
                    "LambdaInvoke grants the function and its versions; only the training functions"
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
