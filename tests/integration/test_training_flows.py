"""The real training workflow, offline: the synthesized state machine in moto's interpreter, the real
Lambda handlers, and real trainings on the local Custom Labels engine.

One stack and one engine serve the module; every test works on its own configured project, so
the tests do not depend on each other or on their order.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from autopilot.engine.testing import RunningEngine, running_engine
from autopilot.local.runtime import LocalRuntime, running_stack
from autopilot.local.sample_data import demo_split
from autopilot.local.stepfunctions import ExecutionResult, wait_for_execution
from autopilot.local.template import deep_merge, synth_template
from lambdas.common import config
from lambdas.common.constants import (
    DETAIL_TYPE_TRAIN_REQUESTED,
    EVENT_MODEL_RUNNING,
    EVENT_MODEL_STARTING,
    EVENT_MODEL_STOP_FAILED,
    EVENT_MODEL_STOPPING,
    EVENT_SOURCE,
    EVENT_TRAINING_COMPLETED,
    EVENT_TRAINING_DATASET_SPLIT,
    EVENT_TRAINING_FAILED,
    EVENT_TRAINING_SKIPPED,
    EVENT_TRAINING_STARTED,
    EVENT_VERSION_DELETED,
    EVENT_VERSION_PROMOTED,
    EVENT_VERSION_REJECTED,
    ITEM_TRAINING,
    OUTPUT_DATA_BUCKET,
    OUTPUT_SETTINGS_PARAMETER,
    OUTPUT_STATE_TABLE,
)
from lambdas.common.production import ProductionRecord, get_production
from lambdas.common.settings import ProjectSettings, load_cdk_context, settings_from_context
from lambdas.training import naming
from lambdas.training.rekognition import TrainingRekognition
from lambdas.training.trigger import TriggerRequest, execution_input

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("training-flows")]

LABELS = ("zero", "one", "two")
PROJECTS = {
    "tr-promote": {},
    "tr-reject": {},
    "tr-failed": {},
    "tr-preflight": {},
    "tr-busy": {},
    "tr-retention": {"retain_versions": 1},
    "tr-bluegreen": {},
    "tr-timeout": {},
    "tr-startfail": {},
    "tr-adapter": {"feature": "CONTENT_MODERATION", "moderation_confidence_threshold": 40},
    "tr-throttled": {},
    "tr-vanished": {},
    "tr-label-drop": {"max_label_f1_drop": 0.2},
    "tr-label-floors": {"label_f1_floors": {"zero": 0.5, "one": 0.5, "two": 0.5}, "max_label_f1_drop": 0.2},
    "tr-bad-lines": {},
}
CONTEXT = {
    "projects": {
        "defaults": {
            "training_schedule": "cron(0 3 1 1 ? 2099)",
            "training_poll_seconds": 1,
            "model_poll_seconds": 1,
            "min_new_labeled_entries": 10,
            "f1_floor": 0.3,
            "promotion_margin": 0.01,
            "retain_versions": 3,
            "training_timeout_hours": 1,
        },
        **PROJECTS,
    },
    "controller_rate_minutes": 60,
}
EXECUTION_TIMEOUT_S = 120


@dataclass
class Harness:
    runtime: LocalRuntime
    engine: RunningEngine
    bucket: str
    table: str

    @property
    def rekognition(self) -> Any:
        return self.engine.client()

    def trigger(self, project: str, force: bool = False) -> dict[str, Any]:
        (name,) = self.runtime.function_names("Training/TriggerFunction/")
        invocation = self.runtime.lambdas.invoke(name, {"project": project, "force": force, "source": "test"})
        assert invocation.error is None, invocation.error
        return dict(invocation.result)

    def wait(self, execution_arn: str) -> ExecutionResult:
        return wait_for_execution(
            self.runtime.client("stepfunctions"), execution_arn, timeout_s=EXECUTION_TIMEOUT_S, poll_s=0.2
        )

    def events(self, project: str) -> list[dict[str, Any]]:
        found = []
        for published in list(self.runtime.published):
            body = published.json()
            if isinstance(body, dict) and body.get("project") == project and "type" in body:
                found.append(body)
        return found

    def event_types(self, project: str) -> list[str]:
        return [event["type"] for event in self.events(project)]

    def wait_for_event(self, project: str, event_type: str, timeout_s: float = 20) -> dict[str, Any]:
        assert self.runtime.run_until(lambda: event_type in self.event_types(project), timeout_s), (
            f"no {event_type} for {project}; saw {self.event_types(project)}"
        )
        return next(e for e in self.events(project) if e["type"] == event_type)

    def production(self, project: str) -> ProductionRecord | None:
        return get_production(project, table_name=self.table, client=self.runtime.client("dynamodb"))

    def set_production(self, record: ProductionRecord) -> None:
        self.runtime.client("dynamodb").put_item(TableName=self.table, Item=record.to_attribute_values())

    def training_item(self, project: str) -> dict[str, Any]:
        item = self.runtime.client("dynamodb").get_item(
            TableName=self.table,
            Key={"pk": {"S": f"PROJECT#{project}"}, "sk": {"S": ITEM_TRAINING}},
            ConsistentRead=True,
        )
        return dict(item.get("Item") or {})

    def versions(self, project_arn: str) -> dict[str, dict[str, Any]]:
        response = self.rekognition.describe_project_versions(ProjectArn=project_arn)
        return {v["ProjectVersionArn"].split("/")[-2]: v for v in response["ProjectVersionDescriptions"]}

    def wait_version(
        self, project_arn: str, name: str, *statuses: str, timeout_s: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            version = self.versions(project_arn).get(name)
            if version and version["Status"] in statuses:
                return version
            time.sleep(0.2)
        raise AssertionError(f"{name} never reached {statuses}: {self.versions(project_arn).get(name)}")

    # --- datasets -----------------------------------------------------------------------------
    def create_project(
        self,
        project: str,
        *,
        train_per_label: int = 8,
        test_per_label: int = 2,
        labels: tuple[str, ...] = LABELS,
        feature: str = "CUSTOM_LABELS",
    ) -> str:
        """A project with TRAIN (and TEST, possibly empty) datasets of rendered digits."""
        split = demo_split(
            train_per_label=train_per_label,
            test_per_label=test_per_label,
            held_out_per_label=0,
            labels=labels,
        )
        rekognition = self.rekognition
        extra = {"Feature": feature, "AutoUpdate": "DISABLED"} if feature == "CONTENT_MODERATION" else {}
        project_arn = rekognition.create_project(ProjectName=project, **extra)["ProjectArn"]
        arns = {
            kind: rekognition.create_dataset(ProjectArn=project_arn, DatasetType=kind)["DatasetArn"]
            for kind in ("TRAIN", "TEST")
        }
        self._wait_datasets(arns.values())
        for kind, images in (("TRAIN", split.train), ("TEST", split.test)):
            if images:
                lines = [
                    self._line(project, kind, image.label, image.filename, image.png) for image in images
                ]
                rekognition.update_dataset_entries(
                    DatasetArn=arns[kind], Changes={"GroundTruth": "\n".join(lines).encode()}
                )
        self._wait_datasets(arns.values())
        return project_arn

    def _line(self, project: str, kind: str, label: str, filename: str, png: bytes) -> str:
        # Outside the ingestion prefixes, so only this test writes the datasets.
        key = f"fixtures/{project}/{kind.lower()}/{label}/{filename}"
        self.runtime.client("s3").put_object(Bucket=self.bucket, Key=key, Body=png)
        return json.dumps(
            {
                "source-ref": f"s3://{self.bucket}/{key}",
                "label": 1,
                "label-metadata": {
                    "confidence": 1,
                    "class-name": label,
                    "human-annotated": "yes",
                    "creation-date": "2026-01-01T00:00:00",
                    "type": "groundtruth/image-classification",
                },
            }
        )

    def _wait_datasets(self, arns: Any) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            statuses = [
                self.rekognition.describe_dataset(DatasetArn=a)["DatasetDescription"]["Status"] for a in arns
            ]
            if all(status.endswith("_COMPLETE") for status in statuses):
                return
            time.sleep(0.05)
        raise AssertionError(f"datasets still {statuses}")


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    base = load_cdk_context("cdk.json")
    context = deep_merge(base, CONTEXT)
    context["projects"] = {
        "defaults": deep_merge(base["projects"]["defaults"], CONTEXT["projects"]["defaults"]),
        **PROJECTS,
    }
    # The stack deployed with the test projects: their IAM grants are per project (the checks
    # enforce them offline), so a project only in the settings parameter would be refused as on AWS.
    # The settings parameter also carries them, as the deployed stack's does.
    template = synth_template(context, outdir=str(tmp_path_factory.mktemp("training-cdk")))
    with (
        running_engine(time_scale=0.002) as engine,
        running_stack(template, extra_environment={"AWS_ENDPOINT_URL_REKOGNITION": engine.url}) as runtime,
    ):
        parameter = runtime.output(OUTPUT_SETTINGS_PARAMETER)
        runtime.client("ssm").put_parameter(
            Name=parameter, Value=settings_from_context(context).to_json(), Type="String", Overwrite=True
        )
        config.clear_cache()
        bucket = runtime.output(OUTPUT_DATA_BUCKET)
        table = runtime.output(OUTPUT_STATE_TABLE)
        yield Harness(runtime, engine, bucket, table)
    config.clear_cache()


def _execution(harness: Harness, project: str, force: bool = False) -> ExecutionResult:
    started = harness.trigger(project, force=force)
    assert started["status"] == "STARTED", started
    return harness.wait(started["execution_arn"])


# --- scenarios ----------------------------------------------------------------------------------
def test_empty_test_set_is_split_then_the_version_is_trained_and_promoted(harness: Harness) -> None:
    # Given a project whose TEST dataset is empty
    project = "tr-promote"
    project_arn = harness.create_project(project, test_per_label=0)
    # When the trigger runs (enough new labeled entries, nothing in production)
    result = _execution(harness, project)
    # Then TRAIN was split into TEST, a version was trained, passed the gate and is production
    assert result.succeeded, (result.error, result.cause)
    entered = result.states_entered()
    assert (
        entered.index("DistributeEntries")
        < entered.index("Preflight")
        < entered.index("CreateProjectVersion")
    )
    assert result.output["outcome"] == "PROMOTED"
    production = harness.production(project)
    assert production is not None and production.version_arn == result.output["version_arn"]
    assert production.f1_score >= 0.3 and production.dataset_snapshot.test_labeled_entries > 0
    version = harness.versions(project_arn)[production.version_name]
    assert version["Status"] == "TRAINING_COMPLETED"
    assert version["VersionDescription"].startswith("autopilot classification: TRAIN")
    assert version["OutputConfig"] == {
        "S3Bucket": harness.bucket,
        "S3KeyPrefix": f"{project}/training-output/",
    }
    # And a subscriber saw every transition, the lock is released with the outcome
    harness.wait_for_event(project, EVENT_VERSION_PROMOTED)
    assert harness.event_types(project) == [
        EVENT_TRAINING_DATASET_SPLIT,
        EVENT_TRAINING_STARTED,
        EVENT_TRAINING_COMPLETED,
        EVENT_VERSION_PROMOTED,
    ]
    item = harness.training_item(project)
    assert "lock_token" not in item and item["last_outcome"]["S"] == "PROMOTED"


def test_a_version_that_does_not_beat_production_is_rejected(harness: Harness) -> None:
    # Given a production version with a perfect F1 score
    project = "tr-reject"
    harness.create_project(project)
    incumbent = ProductionRecord(
        project,
        "arn:aws:rekognition:us-east-1:123456789012:project/tr-reject/version/old/1",
        "old",
        1.0,
        "2026-01-01T00:00:00+00:00",
    )
    harness.set_production(incumbent)
    # When a training runs
    result = _execution(harness, project)
    # Then the gate rejects the new version and production is unchanged
    assert result.succeeded and result.output["outcome"] == "REJECTED"
    assert "does not beat production old" in result.output["gate"]["reason"]
    assert harness.production(project) == incumbent
    rejected = harness.wait_for_event(project, EVENT_VERSION_REJECTED)
    assert rejected["detail"]["production_f1_score"] == 1.0
    assert harness.training_item(project)["last_outcome"]["S"] == "REJECTED"


def test_training_failed_ends_in_a_notified_failure_with_the_status_message(harness: Harness) -> None:
    # Given the service will fail the next training of the project
    project = "tr-failed"
    harness.create_project(project)
    harness.engine.faults.fail_training(project=project, message="The training data has too few images.")
    # When a training runs
    result = _execution(harness, project)
    # Then the execution fails, naming the service's StatusMessage, and the lock is released
    assert result.status == "FAILED" and result.error == "TrainingFailed"
    assert result.cause == "training failed: The training data has too few images."
    failed = harness.wait_for_event(project, EVENT_TRAINING_FAILED)
    assert failed["detail"]["status_message"] == "The training data has too few images."
    assert failed["detail"]["error"] == "TRAINING_FAILED"
    assert harness.production(project) is None
    item = harness.training_item(project)
    assert "lock_token" not in item and item["last_outcome"]["S"] == "FAILED"


def test_preflight_failure_stops_before_training_with_a_clear_reason(harness: Harness) -> None:
    # Given a classification project with a single label
    project = "tr-preflight"
    project_arn = harness.create_project(project, labels=("zero",))
    # When a training runs
    result = _execution(harness, project)
    # Then no version is created and the reason says what to do
    assert result.status == "FAILED"
    assert "classification needs at least 2 labels with images in TRAIN" in (result.cause or "")
    assert "CreateProjectVersion" not in result.states_entered()
    assert harness.versions(project_arn) == {}
    failed = harness.wait_for_event(project, EVENT_TRAINING_FAILED)
    assert failed["detail"]["error"] == "PreflightError"
    assert "lock_token" not in harness.training_item(project)


def test_a_second_trigger_while_one_runs_is_skipped(harness: Harness) -> None:
    # Given a training in flight
    project = "tr-busy"
    harness.create_project(project)
    first = harness.trigger(project)
    assert first["status"] == "STARTED"
    # When a forced on-demand request (an EventBridge event, as the CLI sends it) arrives meanwhile
    harness.runtime.client("events").put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": DETAIL_TYPE_TRAIN_REQUESTED,
                "Detail": json.dumps({"project": project, "force": True}),
            }
        ]
    )
    skipped = harness.wait_for_event(project, EVENT_TRAINING_SKIPPED)
    # Then it is skipped with the reason, and only one execution ran
    assert "already in flight" in skipped["detail"]["reason"] and skipped["detail"]["source"] == "on-demand"
    assert harness.wait(first["execution_arn"]).succeeded
    assert harness.event_types(project).count(EVENT_TRAINING_STARTED) == 1
    # And once it finished, nothing new to learn means no new training either
    third = harness.trigger(project)
    assert third["status"] == "SKIPPED" and "only 0 new labeled entries" in third["reason"]


def test_retention_deletes_old_versions_but_never_production_running_or_the_new_one(harness: Harness) -> None:
    # Given three older versions: one in production, one running, one idle (retain_versions = 1)
    project = "tr-retention"
    project_arn = harness.create_project(project)
    rekognition = harness.rekognition
    older = {}
    for name in ("old-production", "old-running", "old-idle"):
        older[name] = rekognition.create_project_version(
            ProjectArn=project_arn,
            VersionName=name,
            OutputConfig={"S3Bucket": harness.bucket, "S3KeyPrefix": f"{project}/training-output/"},
        )["ProjectVersionArn"]
        harness.wait_version(project_arn, name, "TRAINING_COMPLETED")
    rekognition.start_project_version(ProjectVersionArn=older["old-running"], MinInferenceUnits=1)
    harness.wait_version(project_arn, "old-running", "RUNNING")
    # The production version cannot be beaten, so the new one is rejected (and stays the newest)
    harness.set_production(
        ProductionRecord(project, older["old-production"], "old-production", 1.0, "2026-01-01T00:00:00+00:00")
    )
    # When a training runs
    result = _execution(harness, project, force=True)
    # Then only the idle old version is deleted
    assert result.succeeded and result.output["outcome"] == "REJECTED"
    deleted = harness.wait_for_event(project, EVENT_VERSION_DELETED)
    assert deleted["detail"]["version_arn"] == older["old-idle"]
    remaining = harness.versions(project_arn)
    assert {"old-production", "old-running", result.output["version_name"]} <= set(remaining)
    assert "old-idle" not in remaining or remaining["old-idle"]["Status"] == "DELETING"
    rekognition.stop_project_version(ProjectVersionArn=older["old-running"])


def test_blue_green_promotion_starts_the_new_version_before_stopping_the_old(harness: Harness) -> None:
    # Given a promoted version that is serving (RUNNING)
    project = "tr-bluegreen"
    project_arn = harness.create_project(project)
    first = _execution(harness, project)
    assert first.output["outcome"] == "PROMOTED"
    old = harness.production(project)
    assert old is not None
    harness.rekognition.start_project_version(ProjectVersionArn=old.version_arn, MinInferenceUnits=1)
    harness.wait_version(project_arn, old.version_name, "RUNNING")
    # and a production score the next version beats
    harness.set_production(dataclasses.replace(old, f1_score=0.1))
    # When a forced training runs
    result = _execution(harness, project, force=True)
    # Then the new version runs, is production, and the old one is stopping
    assert result.succeeded and result.output["outcome"] == "PROMOTED", (result.error, result.cause)
    entered = result.states_entered()
    assert entered.index("StartNewVersion") < entered.index("Promote") < entered.index("StopOldVersion")
    new = harness.production(project)
    assert new is not None and new.version_arn == result.output["version_arn"]
    assert new.previous_version_arn == old.version_arn
    versions = harness.versions(project_arn)
    assert versions[new.version_name]["Status"] == "RUNNING"
    assert versions[old.version_name]["Status"] in ("STOPPING", "STOPPED")
    harness.wait_for_event(project, EVENT_MODEL_STOPPING)
    types = harness.event_types(project)
    assert (
        types.index(EVENT_MODEL_STARTING)
        < types.index(EVENT_MODEL_RUNNING)
        < types.index(EVENT_MODEL_STOPPING)
    )
    harness.rekognition.stop_project_version(ProjectVersionArn=new.version_arn)


ADAPTER_LABELS = {"zero": ["Smoking"], "one": ["Weapons"], "two": []}  # "two": no unsafe content


def create_adapter_project(harness: Harness, project: str) -> str:
    """A CONTENT_MODERATION project (no datasets) with training and test manifests in the adapter
    format where ingestion keeps them."""
    project_arn = harness.rekognition.create_project(
        ProjectName=project, Feature="CONTENT_MODERATION", AutoUpdate="DISABLED"
    )["ProjectArn"]
    split = demo_split(train_per_label=8, test_per_label=2, held_out_per_label=0, labels=LABELS)
    s3 = harness.runtime.client("s3")
    for kind, images in (("train", split.train), ("test", split.test)):
        lines = []
        for image in images:
            key = f"fixtures/{project}/{kind}/{image.label}/{image.filename}"
            s3.put_object(Bucket=harness.bucket, Key=key, Body=image.png)
            labels = [{"Name": name} for name in ADAPTER_LABELS[image.label]]
            lines.append(
                json.dumps(
                    {
                        "source-ref": f"s3://{harness.bucket}/{key}",
                        "content-moderation-groundtruth": {"ModerationLabels": labels},
                    }
                )
            )
        s3.put_object(
            Bucket=harness.bucket,
            Key=f"{project}/adapter-manifests/{kind}.manifest",
            Body="\n".join(lines).encode(),
            Metadata={"entries": str(len(lines))},
        )
    return project_arn


def test_moderation_adapters_are_trained_with_their_feature_config(harness: Harness) -> None:
    # Given a CONTENT_MODERATION project with a confidence threshold and both manifests
    project = "tr-adapter"
    project_arn = create_adapter_project(harness, project)
    # When a training runs
    result = _execution(harness, project)
    # Then the adapter was created from the manifests with FeatureConfig and went through the same gate
    assert "CreateAdapterVersion" in result.states_entered(), (result.error, result.cause)
    assert "DescribeTestDataset" not in result.states_entered()
    version = harness.versions(project_arn)[result.output["version_name"]]
    assert version["FeatureConfig"] == {"ContentModeration": {"ConfidenceThreshold": 40.0}}
    train_asset = version["TrainingDataResult"]["Input"]["Assets"][0]["GroundTruthManifest"]["S3Object"]
    test_asset = version["TestingDataResult"]["Input"]["Assets"][0]["GroundTruthManifest"]["S3Object"]
    assert train_asset["Name"] == f"{project}/adapter-manifests/train.manifest" and train_asset["Version"]
    assert test_asset["Name"] == f"{project}/adapter-manifests/test.manifest"
    assert version["TestingDataResult"]["Input"].get("AutoCreate") in (None, False)
    assert result.output["outcome"] in ("PROMOTED", "REJECTED")


def run_with_budget(harness: Harness, project: str, **settings: Any) -> Any:
    """Starts the workflow the trigger would start, with `settings` overriding its polling budget."""
    rekognition = TrainingRekognition(harness.rekognition)
    info = rekognition.describe_project(project)
    assert info is not None
    datasets = {kind: rekognition.describe_dataset(kind, arn) for kind, arn in info.datasets.items()}
    token = naming.execution_name(project)
    payload = execution_input(
        project=info,
        datasets=datasets,
        settings=ProjectSettings(),
        version_name=naming.version_name(project),
        lock_token=token,
        request=TriggerRequest(project, force=True, source="test"),
        reason="test",
    )
    payload["settings"].update(settings)
    (machine,) = [
        arn for lid, arn in harness.runtime.state_machines.items() if lid.startswith("TrainingStateMachine")
    ]
    sfn = harness.runtime.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, name=token, input=json.dumps(payload))["executionArn"]
    return harness.wait(arn)


def test_a_training_that_outlasts_its_polling_budget_fails_as_a_timeout(harness: Harness) -> None:
    # Given a project whose training outlasts its polling budget
    project = "tr-timeout"
    harness.create_project(project)
    # When it runs with a budget of one immediate status check (the engine trains for longer)
    result = run_with_budget(harness, project, poll_seconds=0, max_polls=1)
    # Then the bounded loop ends in a notified failure naming the budget and the last status
    assert result.status == "FAILED"
    assert (
        result.cause
        == "training did not finish within 1 status checks 0 s apart (last status TRAINING_IN_PROGRESS)"
    )
    failed = harness.wait_for_event(project, EVENT_TRAINING_FAILED)
    assert failed["detail"]["error"] == "TRAINING_TIMEOUT"


def test_a_new_version_that_fails_to_start_leaves_production_serving(harness: Harness) -> None:
    # Given a promoted version that is serving, and a next version the gate would promote
    project = "tr-startfail"
    project_arn = harness.create_project(project)
    assert _execution(harness, project).output["outcome"] == "PROMOTED"
    old = harness.production(project)
    assert old is not None
    harness.rekognition.start_project_version(ProjectVersionArn=old.version_arn, MinInferenceUnits=1)
    harness.wait_version(project_arn, old.version_name, "RUNNING")
    harness.set_production(dataclasses.replace(old, f1_score=0.1))
    # When the new version fails to start during the blue/green switch
    harness.engine.faults.fail_start(project=project, message="Not enough capacity to start the model.")
    result = _execution(harness, project, force=True)
    # Then the training fails with the service's message and the old version keeps serving
    assert result.status == "FAILED"
    assert result.cause == "the new version failed to start: Not enough capacity to start the model."
    current = harness.production(project)
    assert current is not None and current.version_arn == old.version_arn
    assert harness.versions(project_arn)[old.version_name]["Status"] == "RUNNING"
    assert "Promote" not in result.states_entered()
    # And when a later promotion cannot stop the old version, the promotion stands and a person is told
    # (a refusal, not a server error: InternalServerError is retried with backoff, as on AWS)
    harness.engine.faults.fail(
        "StopProjectVersion", count=5, project=project, code="ResourceInUseException", message="stop refused"
    )
    retried = _execution(harness, project, force=True)
    assert retried.succeeded and retried.output["outcome"] == "PROMOTED", (retried.error, retried.cause)
    stop_failed = harness.wait_for_event(project, EVENT_MODEL_STOP_FAILED)
    assert (
        stop_failed["detail"]["version_arn"] == old.version_arn
        and "stop refused" in stop_failed["detail"]["cause"]
    )
    harness.engine.faults.clear()
    for arn in (old.version_arn, retried.output["version_arn"]):
        harness.rekognition.stop_project_version(ProjectVersionArn=arn)


def _task_attempts(result: ExecutionResult, state: str) -> list[list[str]]:
    """Per entry of `state`: the errors of its task attempts in order ("ok" for a success)."""
    entries: list[list[str]] = []
    current = None
    for event in result.history:
        if "stateEnteredEventDetails" in event:
            current = event["stateEnteredEventDetails"]["name"]
            if current == state:
                entries.append([])
        elif current == state and event["type"] == "TaskFailed":
            entries[-1].append(event["taskFailedEventDetails"]["error"])
        elif current == state and event["type"] == "TaskSucceeded":
            entries[-1].append("ok")
    return entries


def test_a_throttled_status_check_is_waited_out_by_the_retry_that_runs_on_aws(harness: Harness) -> None:
    # Given DescribeProjectVersions of the project throttles once, then answers
    project = "tr-throttled"
    harness.create_project(project)
    harness.engine.faults.throttle("DescribeProjectVersions", count=1, project=project)
    # When a training runs
    result = _execution(harness, project)
    # Then the first status check failed with the name AWS raises and was retried in the same state
    assert result.succeeded and result.output["outcome"] == "PROMOTED", (result.error, result.cause)
    attempts = _task_attempts(result, "DescribeTraining")
    assert attempts[0] == ["Rekognition.ThrottlingException", "ok"], attempts
    assert "ReportFailureTask" not in result.states_entered()
    # through the Retry entry of the synthesized definition (the one deployed to AWS)
    definition = json.loads(
        harness.runtime.client("stepfunctions").describe_state_machine(
            stateMachineArn=_training_machine(harness)
        )["definition"]
    )
    retry = definition["States"]["DescribeTraining"]["Retry"][0]
    assert "Rekognition.ThrottlingException" in retry["ErrorEquals"]
    assert harness.engine.faults.list() == []


def test_a_version_that_vanishes_while_training_ends_in_a_notified_failure(harness: Harness) -> None:
    # Given a training whose version disappears from the service right after CreateProjectVersion
    # (AWS refuses DeleteProjectVersion while training, so the engine forgets it directly: the
    # service answers DescribeProjectVersions with an empty list, as after a deletion)
    project = "tr-vanished"
    harness.create_project(project)
    started = harness.trigger(project)
    assert started["status"] == "STARTED", started
    engine = harness.engine.server.engine
    deadline = time.monotonic() + 30
    removed = None
    while removed is None and time.monotonic() < deadline:
        with engine.lock:
            versions = engine.projects[("us-east-1", project)].versions
            if versions:
                removed = versions.pop(next(iter(versions)))
        time.sleep(0.01)
    assert removed is not None, "CreateProjectVersion never ran"
    # When the workflow checks the training status
    result = harness.wait(started["execution_arn"])
    # Then it ends in the notified failure path, not in an uncaught States.Runtime
    assert result.status == "FAILED" and result.error == "TrainingFailed", (result.error, result.cause)
    entered = result.states_entered()
    assert "TrainingVersionVanished" in entered and "ReportFailureTask" in entered
    reason = (
        f"DescribeProjectVersions no longer lists version {removed.name} of project {project}: "
        "it was deleted while training"
    )
    assert result.cause == reason
    failed = harness.wait_for_event(project, EVENT_TRAINING_FAILED)
    assert failed["detail"]["error"] == "VERSION_NOT_FOUND"
    assert failed["detail"]["reason"] == reason and failed["detail"]["version_name"] == removed.name
    item = harness.training_item(project)
    assert "lock_token" not in item and item["last_outcome"]["S"] == "FAILED"


def _training_machine(harness: Harness) -> str:
    (machine,) = [
        arn for lid, arn in harness.runtime.state_machines.items() if lid.startswith("TrainingStateMachine")
    ]
    return machine


# --- per-label gate and failures explained -------------------------------------------------------
def _fixture_keys(harness: Harness, project: str, kind: str, label: str) -> list[str]:
    s3 = harness.runtime.client("s3")
    listed = s3.list_objects_v2(Bucket=harness.bucket, Prefix=f"fixtures/{project}/{kind}/{label}/")
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_a_version_better_on_average_but_worse_on_one_label_is_rejected_naming_it(harness: Harness) -> None:
    # Given a promoted version trained on clean data (max_label_f1_drop 0.2)
    project = "tr-label-drop"
    harness.create_project(project, test_per_label=4)
    first = _execution(harness, project)
    assert first.output["outcome"] == "PROMOTED", (first.error, first.cause)
    old = harness.production(project)
    assert old is not None
    # and a production aggregate F1 any new version beats
    harness.set_production(dataclasses.replace(old, f1_score=0.1))
    # When the TRAIN images of label "two" are replaced by images of a zero and a forced training runs
    s3 = harness.runtime.client("s3")
    zero_images = _fixture_keys(harness, project, "train", "zero")
    for index, key in enumerate(_fixture_keys(harness, project, "train", "two")):
        body = s3.get_object(Bucket=harness.bucket, Key=zero_images[index % len(zero_images)])["Body"].read()
        s3.put_object(Bucket=harness.bucket, Key=key, Body=body)
    result = _execution(harness, project, force=True)
    # Then the gate rejects the version although its F1 beats production's, naming label "two"
    assert result.succeeded and result.output["outcome"] == "REJECTED", (result.error, result.cause)
    assert result.output["gate"]["f1_score"] > 0.1
    rejected = harness.wait_for_event(project, EVENT_VERSION_REJECTED)
    detail = rejected["detail"]
    failures = {failure["label"]: failure for failure in detail["label_failures"]}
    assert "two" in failures
    assert "label 'two' F1 fell from" in failures["two"]["reason"]
    assert failures["two"]["production_f1"] - failures["two"]["f1"] > 0.2
    assert "per-label gate" in detail["reason"]
    # every label that failed is listed, and only those
    rows = {row["label"]: row for row in detail["labels"]}
    dropped = {label for label, row in rows.items() if row["production_f1"] - row["f1"] > 0.2 + 1e-9}
    assert set(failures) == dropped
    # both versions were evaluated on the same TEST snapshot (TEST did not change), and the event says so
    assert detail["same_test_set"] is True
    assert "same TEST dataset snapshot" in detail["test_set_note"]
    assert harness.production(project) == dataclasses.replace(old, f1_score=0.1)


def test_a_version_that_meets_every_label_floor_is_promoted(harness: Harness) -> None:
    # Given label floors of 0.5 for every label and a clean dataset
    project = "tr-label-floors"
    harness.create_project(project, test_per_label=4)
    # When a training runs
    result = _execution(harness, project)
    # Then it is promoted and the completion event carries every label's figures
    assert result.succeeded and result.output["outcome"] == "PROMOTED", (result.error, result.cause)
    assert result.output["gate"]["label_failures"] == []
    completed = harness.wait_for_event(project, EVENT_TRAINING_COMPLETED)
    rows = {row["label"]: row for row in completed["detail"]["labels"]}
    assert set(rows) == {"zero", "one", "two"}
    assert all(row["f1"] >= 0.5 and row["test_images"] == 4 for row in rows.values())
    assert all(0 <= row["threshold"] <= 1 for row in rows.values())


def test_a_training_failed_on_bad_lines_publishes_error_codes_and_first_lines(harness: Harness) -> None:
    # Given a project where 8 of its 24 TRAIN images (more than 20%) are not images at all
    project = "tr-bad-lines"
    harness.create_project(project)
    s3 = harness.runtime.client("s3")
    broken = [key for label in ("one", "two") for key in _fixture_keys(harness, project, "train", label)[:4]]
    for key in broken:
        s3.put_object(Bucket=harness.bucket, Key=key, Body=b"this is not an image")
    # When a training runs
    result = _execution(harness, project)
    # Then the training fails, and the failure names the terminal error, the counts per error code
    # and the first lines in error (source-ref, code, message)
    assert result.status == "FAILED" and result.error == "TrainingFailed"
    failed = harness.wait_for_event(project, EVENT_TRAINING_FAILED)
    detail = failed["detail"]
    assert detail["error"] == "TRAINING_FAILED"
    validation = detail["validation"]
    assert {
        "scope": "training",
        "code": "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST",
        "message": "The manifest file contains too many invalid rows.",
    } in validation["manifest_errors"]
    assert validation["error_counts"] == {"ERROR_INVALID_IMAGE": 8}
    assert validation["statistics"]["training"]["invalid_json_lines"] == 8
    first = validation["first_lines_in_error"]
    assert sorted(line["source-ref"] for line in first) == sorted(
        f"s3://{harness.bucket}/{key}" for key in broken
    )
    assert all(line["code"] == "ERROR_INVALID_IMAGE" and line["dataset"] == "training" for line in first)
    assert all(line["message"].startswith("The image is invalid.") for line in first)
    # and the execution's cause and the training item (shown by `autopilot status`) say it in one line
    assert "ERROR_INVALID_IMAGE x8" in (result.cause or "")
    item = harness.training_item(project)
    assert (
        item["last_outcome"]["S"] == "FAILED"
        and "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST" in item["last_reason"]["S"]
    )
