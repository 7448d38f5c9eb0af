"""A custom moderation adapter end to end, offline: images uploaded under `moderation/train/<label>/`
and `moderation/train/safe/` reach the ingestion function through the stack's S3 notifications,
become the project's training manifest in S3, and the training workflow trains an adapter from it
(TrainingData assets, TestingData.AutoCreate), gates and promotes it; a version the service makes
on its own (AutoUpdate) is reported.

The synthesized stack in the local runtime (moto, the real handlers, moto's Step Functions
interpreter) and real trainings on the local engine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from autopilot.engine.testing import RunningEngine, running_engine
from autopilot.local.runtime import LocalRuntime, running_stack
from autopilot.local.sample_data import demo_split
from autopilot.local.stepfunctions import wait_for_execution
from autopilot.local.template import deep_merge, synth_template
from lambdas.common import aws, config
from lambdas.common.constants import OUTPUT_DATA_BUCKET, OUTPUT_SETTINGS_PARAMETER, OUTPUT_STATE_TABLE
from lambdas.common.production import get_production
from lambdas.common.settings import load_cdk_context, settings_from_context

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("adapter-flow")]

PROJECT = "moderation"  # configured as CONTENT_MODERATION in cdk.json
# Rendered digits stand in for photos: the engine learns them like any image.
LABEL_FOLDERS = {"zero": "Smoking", "one": "Weapons", "two": "safe"}
TRAIN_PER_LABEL = 10
CONTEXT = {
    "ingestion": {"flush_delay_seconds": 0},
    "projects": {
        "defaults": {
            "training_schedule": "cron(0 3 1 1 ? 2099)",
            "training_poll_seconds": 1,
            "model_poll_seconds": 1,
            "min_new_labeled_entries": 10,
            "f1_floor": 0.3,
            "training_timeout_hours": 1,
        },
        PROJECT: {
            "feature": "CONTENT_MODERATION",
            "moderation_confidence_threshold": 40,
            "auto_update": True,
        },
    },
    "controller_rate_minutes": 60,
}
TRAIN_MANIFEST = f"{PROJECT}/adapter-manifests/train.manifest"


@dataclass
class Flow:
    runtime: LocalRuntime
    engine: RunningEngine
    bucket: str
    table: str

    def events(self) -> list[dict[str, Any]]:
        found = []
        for published in list(self.runtime.published):
            body = published.json()
            if isinstance(body, dict) and body.get("project") == PROJECT and "type" in body:
                found.append(body)
        return found

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [event for event in self.events() if event["type"] == event_type]

    def trigger(self, force: bool = False) -> dict[str, Any]:
        (name,) = self.runtime.function_names("Training/TriggerFunction/")
        invocation = self.runtime.lambdas.invoke(name, {"project": PROJECT, "force": force, "source": "test"})
        assert invocation.error is None, invocation.error
        return dict(invocation.result)

    def manifest_lines(self) -> list[dict[str, Any]]:
        try:
            body = self.runtime.client("s3").get_object(Bucket=self.bucket, Key=TRAIN_MANIFEST)["Body"]
        except self.runtime.client("s3").exceptions.NoSuchKey:
            return []
        return [json.loads(line) for line in body.read().decode().splitlines()]


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    template = synth_template(CONTEXT, outdir=str(tmp_path_factory.mktemp("adapter-cdk")))
    with (
        running_engine(time_scale=0.002) as engine,
        running_stack(template, extra_environment={"AWS_ENDPOINT_URL_REKOGNITION": engine.url}) as runtime,
    ):
        context = deep_merge(load_cdk_context("cdk.json"), CONTEXT)
        context["projects"] = CONTEXT["projects"]
        runtime.client("ssm").put_parameter(
            Name=runtime.output(OUTPUT_SETTINGS_PARAMETER),
            Value=settings_from_context(context).to_json(),
            Type="String",
            Overwrite=True,
        )
        config.clear_cache()
        yield Flow(runtime, engine, runtime.output(OUTPUT_DATA_BUCKET), runtime.output(OUTPUT_STATE_TABLE))
    aws.reset_clients()
    config.clear_cache()


def test_uploaded_images_become_a_promoted_adapter_and_service_versions_are_reported(flow: Flow) -> None:
    # Given images uploaded under moderation/train/<label>/ and moderation/train/safe/
    split = demo_split(
        train_per_label=TRAIN_PER_LABEL, test_per_label=0, held_out_per_label=0, labels=tuple(LABEL_FOLDERS)
    )
    s3 = flow.runtime.client("s3")
    for image in split.train:
        s3.put_object(
            Bucket=flow.bucket,
            Key=f"{PROJECT}/train/{LABEL_FOLDERS[image.label]}/{image.filename}",
            Body=image.png,
        )
    # When ingestion has run, the training manifest in S3 holds one adapter line per image
    expected = len(split.train)
    assert flow.runtime.run_until(lambda: len(flow.manifest_lines()) == expected, timeout_s=120), (
        f"{len(flow.manifest_lines())} of {expected} lines; events {[e['type'] for e in flow.events()]}"
    )
    by_folder: dict[str, set[tuple[str, ...]]] = {}
    for line in flow.manifest_lines():
        folder = line["source-ref"].split("/")[-2]
        names = tuple(label["Name"] for label in line["content-moderation-groundtruth"]["ModerationLabels"])
        by_folder.setdefault(folder, set()).add(names)
    assert by_folder == {"Smoking": {("Smoking",)}, "Weapons": {("Weapons",)}, "safe": {()}}
    rekognition = flow.engine.client()
    (project,) = rekognition.describe_projects(ProjectNames=[PROJECT], Features=["CONTENT_MODERATION"])[
        "ProjectDescriptions"
    ]
    assert project.get("Datasets", []) == [] and project["AutoUpdate"] == "ENABLED"

    # And a training runs (no test manifest: the test set is split off automatically)
    started = flow.trigger()
    assert started["status"] == "STARTED", started
    result = wait_for_execution(
        flow.runtime.client("stepfunctions"), started["execution_arn"], timeout_s=180, poll_s=0.2
    )
    # Then the adapter was trained from the manifest's version with TestingData.AutoCreate and promoted
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert "CreateAutoSplitAdapterVersion" in result.states_entered()
    assert result.output["outcome"] == "PROMOTED", result.output
    version_name = result.output["version_name"]
    (version,) = rekognition.describe_project_versions(
        ProjectArn=project["ProjectArn"], VersionNames=[version_name]
    )["ProjectVersionDescriptions"]
    asset = version["TrainingDataResult"]["Input"]["Assets"][0]["GroundTruthManifest"]["S3Object"]
    current = s3.head_object(Bucket=flow.bucket, Key=TRAIN_MANIFEST)
    assert (asset["Bucket"], asset["Name"], asset["Version"]) == (
        flow.bucket,
        TRAIN_MANIFEST,
        current["VersionId"],
    )
    assert version["TestingDataResult"]["Input"]["AutoCreate"] is True
    assert version["FeatureConfig"] == {"ContentModeration": {"ConfidenceThreshold": 40.0}}
    production = get_production(PROJECT, table_name=flow.table, client=flow.runtime.client("dynamodb"))
    assert production is not None and production.version_arn == version["ProjectVersionArn"]
    assert production.dataset_snapshot.train_labeled_entries == expected
    # And the lifecycle events tell the same story
    assert flow.runtime.run_until(lambda: bool(flow.of_type("version.promoted")), timeout_s=20)
    types = [event["type"] for event in flow.events()]
    for event_type in ("project.created", "entries.applied", "training.started", "training.completed"):
        assert event_type in types, types
    promoted = flow.of_type("version.promoted")
    assert [event["detail"]["version_arn"] for event in promoted] == [version["ProjectVersionArn"]]

    # When the service creates a version on its own (an AutoUpdate retraining) and the schedule runs
    service_version = rekognition.create_project_version(
        ProjectArn=project["ProjectArn"],
        VersionName="auto-update-1",
        OutputConfig={"S3Bucket": flow.bucket, "S3KeyPrefix": f"{PROJECT}/training-output/"},
        TrainingData={"Assets": [{"GroundTruthManifest": {"S3Object": asset}}]},
        TestingData={"AutoCreate": True},
    )["ProjectVersionArn"]
    skipped = flow.trigger()
    again = flow.trigger()
    # Then it is reported once with a lifecycle event, and nothing is trained (no new lines)
    assert skipped["status"] == again["status"] == "SKIPPED"
    assert flow.runtime.run_until(lambda: len(flow.of_type("training.skipped")) == 2, timeout_s=20)
    discovered = flow.of_type("version.discovered")
    assert [event["detail"]["version_arn"] for event in discovered] == [service_version]
    assert discovered[0]["detail"]["version_name"] == "auto-update-1"
    # The adapter the workflow made is not reported as discovered, and production is unchanged
    production = get_production(PROJECT, table_name=flow.table, client=flow.runtime.client("dynamodb"))
    assert production is not None and production.version_arn == version["ProjectVersionArn"]
