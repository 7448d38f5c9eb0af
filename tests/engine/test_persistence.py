"""Optional persistence: with a data directory, projects, datasets and trained models survive a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autopilot.engine.arns import version_arn
from autopilot.engine.backend import Engine
from autopilot.engine.config import EngineConfig
from autopilot.engine.operations import handle
from autopilot.engine.state import Version
from autopilot.engine.testing import running_engine
from tests.engine.conftest import BUCKET, FAST, make_project_with_datasets, train_version, wait_version
from tests.engine.imaging import colour_image


def test_state_and_models_survive_a_restart(s3: Any, tmp_path: Path) -> None:
    # Given an engine with a data directory, a trained and started model
    with running_engine(time_scale=FAST, data_dir=tmp_path) as first:
        rk = first.client()
        made = make_project_with_datasets(rk, s3, "durable", per_label=4)
        arn = train_version(rk, made["project"])["ProjectVersionArn"]
        rk.start_project_version(ProjectVersionArn=arn, MinInferenceUnits=2)
        wait_version(rk, made["project"], "v1", ("STARTING",))
        before = rk.detect_custom_labels(
            ProjectVersionArn=arn, Image={"Bytes": colour_image("red", 5)}, MinConfidence=0
        )
    # When a new engine starts on the same directory
    with running_engine(time_scale=FAST, data_dir=tmp_path) as second:
        rk = second.client()
        # Then everything is there, and the model answers the same
        project = rk.describe_projects(ProjectNames=["durable"])["ProjectDescriptions"][0]
        assert {d["DatasetType"] for d in project["Datasets"]} == {"TRAIN", "TEST"}
        assert (
            rk.describe_dataset(DatasetArn=made["train"])["DatasetDescription"]["DatasetStats"][
                "TotalEntries"
            ]
            == 8
        )
        version = rk.describe_project_versions(ProjectArn=made["project"])["ProjectVersionDescriptions"][0]
        assert (version["Status"], version["MinInferenceUnits"]) == ("RUNNING", 2)
        after = rk.detect_custom_labels(
            ProjectVersionArn=arn, Image={"Bytes": colour_image("red", 5)}, MinConfidence=0
        )
        assert after["CustomLabels"] == before["CustomLabels"]
        assert (tmp_path / "state.json").exists()


def test_interrupted_training_fails_after_restart(tmp_path: Path) -> None:
    # Given a saved state in which a training was still computing when the engine stopped
    engine = Engine(EngineConfig(time_scale=FAST, data_dir=tmp_path))
    project_arn = handle(engine, "CreateProject", {"ProjectName": "cut"}, "us-east-1")["ProjectArn"]
    project = engine.project_by_arn(project_arn)
    project.versions["v1"] = Version(
        arn=version_arn(project_arn, "v1", 1),
        name="v1",
        project_name="cut",
        created=1.0,
        status="TRAINING_IN_PROGRESS",
        status_message="The model is being trained.",
        feature="CUSTOM_LABELS",
        output_config={"S3Bucket": BUCKET},
        train_due=0.0,
    )
    engine.save()
    # When a new engine loads that state
    restarted = Engine(EngineConfig(time_scale=FAST, data_dir=tmp_path))
    described = handle(restarted, "DescribeProjectVersions", {"ProjectArn": project_arn}, "us-east-1")
    # Then the version reports a failed training instead of training forever
    version = described["ProjectVersionDescriptions"][0]
    assert version["Status"] == "TRAINING_FAILED"
    assert "interrupted" in version["StatusMessage"]
