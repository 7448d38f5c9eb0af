"""The training state machine as Amazon States Language, built by `training_definition()`.

    Start -> TrainsFromManifests? -> models: DescribeTestDataset -> TestDatasetEmpty? -> [split:
    DistributeEntries, poll both datasets] -> Preflight -> CreateProjectVersion; moderation adapters:
    AdapterPreflight -> CreateAdapterVersion (TrainingData / TestingData assets or AutoCreate,
    FeatureConfig) -> poll the training -> EvaluationGate
    -> Promote? -> [blue/green: StartNewVersion, poll until RUNNING] -> Promote -> [stop the old
    version] -> retention -> release the lock -> summary          (any failure -> ReportFailureTask)

Every path into the state comes from the contract models of lambdas.training.contracts (the
execution input the trigger dumps, the results the Lambda steps return); every Lambda payload is
checked against the step's request model. Rekognition is called directly where no logic is
needed; Lambdas carry the logic (preflight, gate, promotion, retention, failure report, lock
release). The function ARNs, bucket and topic are passed in (tokens at synth, names in tests).
"""

from __future__ import annotations

from typing import Any

from infra.workflows.adapter_states import adapter_states
from infra.workflows.asl import Path, bounded_poll, catch, lifecycle_message, parameters, publish_lifecycle
from infra.workflows.training_states import (
    REPORT,
    SNS_RETRY,
    TrainingTargets,
    VersionPollNames,
    fail_with,
    guarded,
    invoke,
    read,
    rekognition,
    version_poll,
)
from lambdas.common.constants import (
    EVENT_MODEL_RUNNING,
    EVENT_MODEL_STARTING,
    EVENT_MODEL_STOP_FAILED,
    EVENT_MODEL_STOPPING,
    EVENT_SOURCE,
    EVENT_TRAINING_DATASET_SPLIT,
    EVENT_TRAINING_STARTED,
    VERSION_TAG_MANAGED_BY,
)
from lambdas.common.contracts import checked_fields
from lambdas.training.contracts import (
    FailureRequest,
    FinishRequest,
    GateRequest,
    PreflightRequest,
    PromoteRequest,
    RetentionRequest,
    TrainingSummary,
    state_path,
)
from lambdas.training.gate import PROMOTE

COMMENT = "Custom Labels Autopilot: split, preflight, train, evaluate, promote, clean up"


def training_definition(targets: TrainingTargets, *, timeout_seconds: int) -> dict[str, Any]:
    """ASL of the training state machine; input built by lambdas.training.trigger.execution_input."""

    def publish(event_type: str, detail: dict[str, Any], next_state: str) -> dict:
        detail = {**detail, "execution_arn": read("execution", "arn")}
        return publish_lifecycle(
            event_type,
            topic_arn=targets.topic_arn,
            project=state_path("project"),
            message=lifecycle_message(event_type, state_path("project"), detail),
            next_state=next_state,
            retries=[SNS_RETRY],
            catches=[catch(REPORT, state_path("error"))],
        )

    def retention(outcome: str) -> dict[str, Any]:
        release = f"Release{outcome.title()}"
        task = invoke(
            targets.retention,
            RetentionRequest,
            {
                "project": read("project"),
                "project_arn": read("project_arn"),
                "retain_versions": read("settings", "retain_versions"),
                "protect": Path(f"States.Array({state_path('created', 'ProjectVersionArn')})"),
            },
            state_path("retention"),
            release,
        )
        # A failed clean-up does not undo a promotion: record it and finish.
        return {**task, "Catch": [catch(release, state_path("retention_error"))]}

    def finish(outcome: str) -> dict[str, Any]:
        summary = f"{outcome.title()}Summary"
        task = invoke(
            targets.finish,
            FinishRequest,
            {
                "project": read("project"),
                "lock_token": read("lock_token"),
                "outcome": outcome,
                "reason": read("gate", "reason"),
            },
            state_path("finish"),
            summary,
            retry_all=True,
        )
        return {**task, "Catch": [catch(summary, state_path("finish_error"))]}

    def summary(outcome: str) -> dict[str, Any]:
        """Compact output: the execution result names the outcome, not every intermediate response."""
        return {
            "Type": "Pass",
            "Parameters": parameters(
                checked_fields(
                    TrainingSummary,
                    {
                        "project": read("project"),
                        "outcome": outcome,
                        "version_name": read("version_name"),
                        "version_arn": read("created", "ProjectVersionArn"),
                        "gate": read("gate"),
                    },
                )
            ),
            "Next": outcome.title(),
        }

    def create_version(adapter: bool, manifests: str | None = None) -> dict[str, Any]:
        """CreateProjectVersion from the datasets, or (`manifests`) from the adapter manifests with the
        test manifest ("assets") or the automatic split ("auto")."""
        arguments: dict[str, Any] = {
            "ProjectArn": read("project_arn"),
            "VersionName": read("version_name"),
            "OutputConfig": {"S3Bucket": targets.bucket_name, "S3KeyPrefix": read("output_prefix")},
            "VersionDescription": read("preflight", "description"),
            "Tags": {VERSION_TAG_MANAGED_BY: EVENT_SOURCE, "autopilot-execution": Path("$$.Execution.Name")},
        }
        if manifests is not None:
            arguments["TrainingData"] = {
                "Assets": [{"GroundTruthManifest": {"S3Object": read("adapter", "train_manifest")}}]
            }
            arguments["TestingData"] = (
                {"Assets": [{"GroundTruthManifest": {"S3Object": read("adapter", "test_manifest")}}]}
                if manifests == "assets"
                else {"AutoCreate": True}
            )
        if adapter:  # FeatureConfig only for moderation adapters with a threshold
            arguments["FeatureConfig"] = {
                "ContentModeration": {
                    "ConfidenceThreshold": read("settings", "moderation_confidence_threshold")
                }
            }
        return guarded(
            rekognition(
                "createProjectVersion",
                arguments,
                "PublishStarted",
                selector={"ProjectVersionArn.$": "$.ProjectVersionArn"},
                result_path=state_path("created"),
                busy=True,
            )
        )

    def describe_dataset(kind: str, next_state: str) -> dict[str, Any]:
        return guarded(
            rekognition(
                "describeDataset",
                {"DatasetArn": read(f"{kind}_dataset_arn")},
                next_state,
                selector={"Status.$": "$.DatasetDescription.Status"},
                result_path=state_path("split", kind),
            )
        )

    split_status = (state_path("split", "train", "Status"), state_path("split", "test", "Status"))
    old_version_arn = read("gate", "production", "version_arn")
    new_version_arn = read("created", "ProjectVersionArn")
    states: dict[str, Any] = {
        "Start": {
            "Type": "Pass",
            "Parameters": {"arn.$": "$$.Execution.Id", "name.$": "$$.Execution.Name"},
            "ResultPath": state_path("execution"),
            "Next": "TrainsFromManifests?",
        },
        # 0. Models train from the project's datasets; moderation adapters from its manifests.
        **adapter_states(create_version, datasets_start="DescribeTestDataset"),
        # 1. Split when the TEST dataset is empty.
        "DescribeTestDataset": guarded(
            rekognition(
                "describeDataset",
                {"DatasetArn": read("test_dataset_arn")},
                "TestDatasetEmpty?",
                selector={"stats.$": "$.DatasetDescription.DatasetStats"},
                result_path=state_path("test_dataset"),
            )
        ),
        "TestDatasetEmpty?": {
            "Type": "Choice",
            "Choices": [
                {
                    "Or": [
                        {"Variable": state_path("test_dataset", "stats", "TotalEntries"), "IsPresent": False},
                        {"Variable": state_path("test_dataset", "stats", "TotalEntries"), "NumericEquals": 0},
                    ],
                    "Next": "DistributeEntries",
                }
            ],
            "Default": "Preflight",
        },
        "DistributeEntries": guarded(
            rekognition(
                "distributeDatasetEntries",
                {"Datasets": [{"Arn": read("train_dataset_arn")}, {"Arn": read("test_dataset_arn")}]},
                "PublishSplit",
                busy=True,
                comment="Moves 20% of TRAIN into the empty TEST dataset",
            )
        ),
        "PublishSplit": publish(
            EVENT_TRAINING_DATASET_SPLIT,
            {"reason": "the TEST dataset is empty: 20% of TRAIN moves to TEST"},
            "InitSplitPolls",
        ),
        **bounded_poll(
            "Split",
            counter=state_path("polls"),
            seconds_path=state_path("settings", "poll_seconds"),
            limit_path=state_path("settings", "max_split_polls"),
            check="DescribeTrainAfterSplit",
            on_exhausted="SplitTimeout",
        ),
        "DescribeTrainAfterSplit": describe_dataset("train", "DescribeTestAfterSplit"),
        "DescribeTestAfterSplit": describe_dataset("test", "SplitComplete?"),
        "SplitComplete?": {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [{"Variable": path, "StringEquals": "UPDATE_COMPLETE"} for path in split_status],
                    "Next": "Preflight",
                },
                {
                    "Or": [
                        {"Variable": path, "StringEquals": status}
                        for path in split_status
                        for status in ("UPDATE_FAILED", "CREATE_FAILED")
                    ],
                    "Next": "SplitFailed",
                },
            ],
            "Default": "CountSplitPoll",
        },
        "SplitFailed": fail_with("SPLIT_FAILED"),
        "SplitTimeout": fail_with("SPLIT_TIMEOUT"),
        # 2. Preflight.
        "Preflight": guarded(
            invoke(
                targets.preflight,
                PreflightRequest,
                {
                    "project": read("project"),
                    "train_dataset_arn": read("train_dataset_arn"),
                    "test_dataset_arn": read("test_dataset_arn"),
                    "feature": read("settings", "feature"),
                },
                state_path("preflight"),
                "CreateProjectVersion",
            )
        ),
        "CreateProjectVersion": create_version(adapter=False),
        "PublishStarted": publish(
            EVENT_TRAINING_STARTED,
            {
                "version_name": read("version_name"),
                "version_arn": new_version_arn,
                "description": read("preflight", "description"),
                "snapshot": read("preflight", "snapshot"),
                "trigger": read("trigger"),
            },
            "InitTrainingPolls",
        ),
        # 4. Bounded polling of the training.
        **version_poll(
            "Training",
            listed="training",
            seconds=state_path("settings", "poll_seconds"),
            limit=state_path("settings", "max_polls"),
            names=VersionPollNames(
                describe="DescribeTraining",
                listed="TrainingVersionListed?",
                vanished="TrainingVersionVanished",
                pick="PickTrainedVersion",
                decide="TrainingStatus?",
                failed="TrainingFailedStatus",
                timeout="TrainingTimeout",
            ),
            while_="training",
            done=("TRAINING_COMPLETED", "EvaluationGate"),
            failed=("TRAINING_FAILED", "TRAINING_FAILED"),
            timed_out="TRAINING_TIMEOUT",
        ),
        # 5. Gate.
        "EvaluationGate": guarded(
            invoke(
                targets.gate,
                GateRequest,
                {
                    "project": read("project"),
                    "project_arn": read("project_arn"),
                    "version": read("training", "version"),
                    "settings": read("settings"),
                },
                state_path("gate"),
                "Promote?",
            )
        ),
        "Promote?": {
            "Type": "Choice",
            "Choices": [
                {"Variable": state_path("gate", "decision"), "StringEquals": PROMOTE, "Next": "BlueGreen?"}
            ],
            "Default": "RetentionAfterRejection",
        },
        "BlueGreen?": {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": state_path("gate", "old_running"),
                    "BooleanEquals": True,
                    "Next": "StartNewVersion",
                }
            ],
            "Default": "Promote",
        },
        # 6. Blue/green: start the new version when the old one is serving.
        "StartNewVersion": guarded(
            rekognition(
                "startProjectVersion",
                {
                    "ProjectVersionArn": new_version_arn,
                    "MinInferenceUnits": read("settings", "min_inference_units"),
                    "MaxInferenceUnits": read("settings", "max_inference_units"),
                },
                "PublishModelStarting",
                selector={"Status.$": "$.Status"},
                result_path=state_path("bluegreen"),
            )
        ),
        "PublishModelStarting": publish(
            EVENT_MODEL_STARTING,
            {
                "version_arn": new_version_arn,
                "reason": "blue/green promotion: the production version is running",
            },
            "InitStartPolls",
        ),
        **version_poll(
            "Start",
            listed="bluegreen",
            seconds=state_path("settings", "model_poll_seconds"),
            limit=state_path("settings", "max_model_polls"),
            names=VersionPollNames(
                describe="DescribeNewVersion",
                listed="NewVersionListed?",
                vanished="NewVersionVanished",
                pick="PickNewVersion",
                decide="NewVersionRunning?",
                failed="StartFailed",
                timeout="StartTimeout",
                wait="WaitNewVersion",
            ),
            while_="starting",
            done=("RUNNING", "PublishModelRunning"),
            failed=("FAILED", "START_FAILED"),
            timed_out="START_TIMEOUT",
        ),
        "PublishModelRunning": publish(EVENT_MODEL_RUNNING, {"version_arn": new_version_arn}, "Promote"),
        # 7. Promotion, stop of the old version, retention, lock release.
        "Promote": guarded(
            invoke(
                targets.promote,
                PromoteRequest,
                {
                    "project": read("project"),
                    "version_arn": new_version_arn,
                    "version_name": read("version_name"),
                    "f1_score": read("gate", "f1_score"),
                    "production": read("gate", "production"),
                    "snapshot": read("preflight", "snapshot"),
                    "execution_arn": read("execution", "arn"),
                    "reason": read("gate", "reason"),
                },
                state_path("promotion"),
                "OldVersionServing?",
            )
        ),
        "OldVersionServing?": {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": state_path("gate", "old_running"),
                    "BooleanEquals": True,
                    "Next": "StopOldVersion",
                }
            ],
            "Default": "RetentionAfterPromotion",
        },
        # The promotion stands even if the old version cannot be stopped (e.g. it is already
        # stopping): a person is told, the training is not reported as failed.
        "StopOldVersion": {
            **rekognition("stopProjectVersion", {"ProjectVersionArn": old_version_arn}, "PublishOldStopping"),
            "Catch": [catch("PublishOldStopFailed", state_path("stop_error"))],
        },
        "PublishOldStopFailed": publish(
            EVENT_MODEL_STOP_FAILED,
            {
                "version_arn": old_version_arn,
                "error": read("stop_error", "Error"),
                "cause": read("stop_error", "Cause"),
                "reason": "blue/green promotion done, but the replaced version could not be stopped; "
                "stop it by hand if it is still running",
            },
            "RetentionAfterPromotion",
        ),
        "PublishOldStopping": publish(
            EVENT_MODEL_STOPPING,
            {
                "version_arn": old_version_arn,
                "reason": "blue/green promotion: replaced by the new production version",
            },
            "RetentionAfterPromotion",
        ),
        "RetentionAfterPromotion": retention("PROMOTED"),
        "RetentionAfterRejection": retention("REJECTED"),
        "ReleasePromoted": finish("PROMOTED"),
        "ReleaseRejected": finish("REJECTED"),
        "PromotedSummary": summary("PROMOTED"),
        "RejectedSummary": summary("REJECTED"),
        "Promoted": {"Type": "Succeed"},
        "Rejected": {"Type": "Succeed"},
        # Failure path: one Lambda turns the error into a reason, stops an unpromoted new version,
        # publishes training.failed and releases the lock; then the execution fails.
        REPORT: {
            **invoke(
                targets.failure,
                FailureRequest,
                {"state": Path("$")},
                state_path("failure"),
                "TrainingFailed",
                retry_all=True,
            ),
            "Catch": [catch("FailureNotReported", state_path("report_error"))],
        },
        "TrainingFailed": {
            "Type": "Fail",
            "Error": "TrainingFailed",
            "CausePath": state_path("failure", "reason"),
        },
        "FailureNotReported": {
            "Type": "Fail",
            "Error": "FailureNotReported",
            "Cause": "the failure report could not be sent; the execution-end handler reports it",
        },
    }
    return {"Comment": COMMENT, "StartAt": "Start", "TimeoutSeconds": timeout_seconds, "States": states}
