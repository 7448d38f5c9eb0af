"""CreateProjectVersion (real training in a worker thread), DescribeProjectVersions,
DeleteProjectVersion, StartProjectVersion, StopProjectVersion."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from autopilot.engine import adapters, errors
from autopilot.engine.arns import version_arn
from autopilot.engine.backend import Engine
from autopilot.engine.clock import epoch_ms
from autopilot.engine.learning.training import (
    TooManyInvalidLines,
    TrainingFailure,
    TrainingReport,
    train,
)
from autopilot.engine.manifests import Entry, parse_manifest
from autopilot.engine.moderation import BASE_MODEL_VERSION, CONTENT_MODERATION, CUSTOM_LABELS
from autopilot.engine.outputs import write_outputs, write_validation
from autopilot.engine.pagination import paged_response
from autopilot.engine.registry import operation
from autopilot.engine.state import Project, Version

LOG = logging.getLogger("autopilot.engine.training")

BUSY = ("TRAINING_IN_PROGRESS", "STARTING", "RUNNING", "STOPPING", "DELETING")


@operation("CreateProjectVersion")
def create_project_version(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    project = engine.open_project(params["ProjectArn"])
    name = params["VersionName"]
    if name in project.versions:
        raise errors.in_use(f"The project {project.name} already has a version named {name}.")
    output = params["OutputConfig"]
    if not output.get("S3Bucket"):
        raise errors.invalid_parameter(
            "OutputConfig.S3Bucket is required: training writes its results there."
        )
    if project.feature == CUSTOM_LABELS and params.get("FeatureConfig"):
        raise errors.invalid_parameter(
            "FeatureConfig applies only to CONTENT_MODERATION projects (adapters)."
        )
    training_data = params.get("TrainingData")
    testing_data = params.get("TestingData")
    train_entries: list[Entry] = []
    test_entries: list[Entry] = []
    if project.datasets:
        if training_data is not None or testing_data is not None:
            raise errors.invalid_parameter(
                "The project has datasets: train from them and omit TrainingData and TestingData "
                "(those apply only to projects without datasets)."
            )
        for dataset_type in ("TRAIN", "TEST"):
            dataset = project.datasets.get(dataset_type)
            if dataset is None:
                raise errors.invalid_parameter(
                    f"The project has no {dataset_type} dataset; create one (or DistributeDatasetEntries)."
                )
            if dataset.status.endswith("_IN_PROGRESS"):
                raise errors.in_use(
                    f"The {dataset_type} dataset is {dataset.status}; train once it is complete."
                )
            if dataset.status == "CREATE_FAILED":
                raise errors.invalid_parameter(f"The {dataset_type} dataset failed to be created.")
        train_entries = list(project.datasets["TRAIN"].entries.values())
        test_entries = list(project.datasets["TEST"].entries.values())
    else:
        if not training_data or not training_data.get("Assets"):
            kind = (
                "adapter manifests: lines of source-ref and "
                f'{adapters.GROUNDTRUTH}: {{"ModerationLabels": [{{"Name": ...}}]}}'
                if project.feature == CONTENT_MODERATION
                else "Ground Truth manifests"
            )
            raise errors.invalid_parameter(
                f"The project has no datasets: give TrainingData.Assets ({kind}) or create datasets."
            )
        if not testing_data or (not testing_data.get("Assets") and not testing_data.get("AutoCreate")):
            raise errors.invalid_parameter("Give TestingData.Assets or TestingData.AutoCreate=true.")
        if testing_data.get("Assets") and testing_data.get("AutoCreate"):
            raise errors.invalid_parameter("TestingData takes Assets or AutoCreate, not both.")
    now = engine.now()
    version = Version(
        arn=version_arn(project.arn, name, epoch_ms(now)),
        name=name,
        project_name=project.name,
        created=now,
        status="TRAINING_IN_PROGRESS",
        status_message="The model is being trained.",
        feature=project.feature,
        output_config=dict(output),
        description=params.get("VersionDescription"),
        feature_config=params.get("FeatureConfig"),
        tags=dict(params.get("Tags") or {}),
        kms_key_id=params.get("KmsKeyId"),
        training_data=training_data,
        testing_data=testing_data,
        training_started=now,
        train_due=engine.due(engine.config.training_min_seconds),
    )
    project.versions[name] = version
    fault = engine.faults.take("training_failed", None, project.name)
    injected = (fault.message or "An internal error occurred during training.") if fault else None
    engine.run_in_background(
        f"training-{project.name}-{name}",
        lambda: _train_worker(engine, project, version, train_entries, test_entries, injected),
    )
    return {"ProjectVersionArn": version.arn}


def _read_assets(engine: Engine, assets: list[dict[str, Any]], what: str) -> list[Entry]:
    entries: dict[str, Entry] = {}
    for _, blob in adapters.manifest_blobs(engine, assets, what):
        parsed, failures = parse_manifest(blob)
        if failures and len(failures) > 0.2 * (len(parsed) + len(failures)):
            raise TrainingFailure(
                f"More than 20% of the lines of the {what} manifest are invalid "
                f"(first: line {failures[0][0]}: {failures[0][1].message})."
            )
        for entry in parsed:
            entries[entry.source_ref] = entry
    return list(entries.values())


def _manifest_entries(engine: Engine, version: Version, adapter: bool) -> tuple[list[Entry], list[Entry]]:
    """Training and testing entries from TrainingData and TestingData (Assets or AutoCreate)."""
    read = adapters.read_adapter_manifests if adapter else _read_assets
    training = version.training_data or {}
    testing = version.testing_data or {}
    train_entries = read(engine, training.get("Assets") or [], "training")
    if not testing.get("AutoCreate"):
        return train_entries, read(engine, testing.get("Assets") or [], "testing")
    if adapter:
        return adapters.auto_split(train_entries, engine.config.seed)
    rng = random.Random(engine.config.seed)
    shuffled = sorted(train_entries, key=lambda e: e.source_ref)
    rng.shuffle(shuffled)
    cut = max(1, round(len(shuffled) * adapters.AUTO_SPLIT_FRACTION))
    return shuffled[cut:], shuffled[:cut]


def _train_worker(
    engine: Engine,
    project: Project,
    version: Version,
    train_entries: list[Entry],
    test_entries: list[Entry],
    injected_failure: str | None,
) -> None:
    started = time.monotonic()
    report: TrainingReport | None = None
    failure: str | None = None
    outputs: dict[str, Any] = {}
    try:
        if injected_failure is not None:
            raise TrainingFailure(injected_failure)
        adapter = version.feature == CONTENT_MODERATION and version.training_data is not None
        if version.training_data is not None:
            train_entries, test_entries = _manifest_entries(engine, version, adapter)
        report = train(train_entries, test_entries, engine.get_object, seed=engine.config.seed)
        if adapter:
            report = adapters.without_safe_class(report)
        outputs = write_outputs(engine, project, version, report, train_entries, test_entries, adapter)
    except TooManyInvalidLines as exc:
        failure = str(exc)
        try:
            outputs = write_validation(
                engine, project, version, train_entries, test_entries, exc.skipped, exc.failed
            )
        except (ClientError, BotoCoreError) as write_error:
            LOG.warning("validation results of %s not written: %s", version.arn, write_error)
    except TrainingFailure as exc:
        failure = str(exc)
    except (ClientError, BotoCoreError) as exc:
        failure = (
            f"Training could not write its results to s3://{version.output_config.get('S3Bucket')}: {exc}"
        )
    except Exception as exc:
        LOG.exception("training of %s failed", version.arn)
        failure = f"An internal error occurred during training: {exc}"
    compute = time.monotonic() - started
    with engine.lock:
        if project.versions.get(version.name) is not version:
            return  # deleted meanwhile
        if report is not None and failure is None:
            engine.save_model(version.arn, report.model)
            version.f1 = round(report.f1, 6)
            version.summary = outputs["summary"]
            version.manifest_summary = outputs["manifest_summary"]
            version.training_output = outputs["training_output"]
            version.testing_output = outputs["testing_output"]
            version.training_validation = outputs["training_validation"]
            version.testing_validation = outputs["testing_validation"]
            version.train_outcome = "ok"
        else:
            version.train_failure = failure
            version.train_outcome = "failed"
            version.manifest_summary = outputs.get("manifest_summary")
            version.training_validation = outputs.get("training_validation")
            version.testing_validation = outputs.get("testing_validation")
        version.training_end = version.training_started + compute
        engine.save()
    LOG.info("training of %s ended (%s) after %.1f s", version.arn, version.train_outcome, compute)


def describe(version: Version) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ProjectVersionArn": version.arn,
        "CreationTimestamp": version.created,
        "Status": version.status,
        "StatusMessage": version.status_message,
        "OutputConfig": version.output_config,
        "Feature": version.feature,
    }
    if version.min_inference_units is not None:
        out["MinInferenceUnits"] = version.min_inference_units
    if version.max_inference_units is not None:
        out["MaxInferenceUnits"] = version.max_inference_units
    completed = version.status not in ("TRAINING_IN_PROGRESS", "TRAINING_FAILED")
    if version.training_end is not None and version.status != "TRAINING_IN_PROGRESS":
        out["TrainingEndTimestamp"] = version.training_end
    if completed and version.billable_seconds is not None:
        out["BillableTrainingTimeInSeconds"] = version.billable_seconds
    # Trained from datasets: the input is the snapshot of the datasets the training used.
    snapshot_train = version.training_output if completed else None
    snapshot_test = version.testing_output if completed else None
    training_result: dict[str, Any] = {"Input": version.training_data or snapshot_train or {"Assets": []}}
    testing_result: dict[str, Any] = {"Input": version.testing_data or snapshot_test or {"Assets": []}}
    if completed:
        if version.training_output:
            training_result["Output"] = version.training_output
        if version.testing_output:
            testing_result["Output"] = version.testing_output
        if version.f1 is not None and version.summary:
            out["EvaluationResult"] = {"F1Score": version.f1, "Summary": {"S3Object": version.summary}}
    # Validation results exist once training validated the manifests, also when it then failed.
    if version.status != "TRAINING_IN_PROGRESS":
        if version.manifest_summary:
            out["ManifestSummary"] = {"S3Object": version.manifest_summary}
        if version.training_validation:
            training_result["Validation"] = version.training_validation
        if version.testing_validation:
            testing_result["Validation"] = version.testing_validation
    out["TrainingDataResult"] = training_result
    out["TestingDataResult"] = testing_result
    if version.kms_key_id:
        out["KmsKeyId"] = version.kms_key_id
    if version.description:
        out["VersionDescription"] = version.description
    if version.feature == CONTENT_MODERATION:
        out["BaseModelVersion"] = BASE_MODEL_VERSION
        if version.feature_config:
            out["FeatureConfig"] = version.feature_config
    return out


@operation("DescribeProjectVersions", mutates=False)
def describe_project_versions(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    project = engine.project_by_arn(params["ProjectArn"])
    names = params.get("VersionNames")
    versions = sorted(project.versions.values(), key=lambda v: v.created, reverse=True)
    selected = [v for v in versions if names is None or v.name in names]
    context = ["DescribeProjectVersions", project.arn, names]
    return paged_response(selected, params, context, "ProjectVersionDescriptions", describe)


@operation("DeleteProjectVersion")
def delete_project_version(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    _, version = engine.version_by_arn(params["ProjectVersionArn"])
    if version.status == "DELETING":
        return {"Status": "DELETING"}
    if version.status in BUSY:
        raise errors.in_use(
            f"The version {version.name} is {version.status}; "
            "stop it (or wait for training to end) before deleting."
        )
    version.status = "DELETING"
    version.status_message = "The model is being deleted."
    version.transition_target = "DELETED"
    version.transition_due = engine.due(engine.config.delete_seconds)
    return {"Status": "DELETING"}


@operation("StartProjectVersion")
def start_project_version(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    project, version = engine.version_by_arn(params["ProjectVersionArn"])
    if version.feature == CONTENT_MODERATION:
        raise errors.invalid_parameter(
            "Adapters are not started: pass the adapter's ARN as ProjectVersion to DetectModerationLabels."
        )
    if version.status in ("STARTING", "RUNNING", "STOPPING", "TRAINING_IN_PROGRESS", "DELETING"):
        raise errors.in_use(f"The version {version.name} is {version.status}.")
    if version.status not in ("TRAINING_COMPLETED", "STOPPED", "FAILED"):
        raise errors.invalid_parameter(
            f"The version {version.name} is {version.status} and cannot be started."
        )
    minimum = params["MinInferenceUnits"]
    maximum = params.get("MaxInferenceUnits")
    if maximum is not None and maximum < minimum:
        raise errors.invalid_parameter(
            "MaxInferenceUnits must be greater than or equal to MinInferenceUnits."
        )
    version.min_inference_units = minimum
    version.max_inference_units = maximum
    version.status = "STARTING"
    version.status_message = "The model is being started."
    fault = engine.faults.take("start_failed", None, project.name)
    version.transition_target = "FAILED" if fault else "RUNNING"
    version.transition_message = (
        (fault.message or "The model failed to start (internal error).") if fault else None
    )
    version.transition_due = engine.due(engine.config.start_seconds)
    return {"Status": "STARTING"}


@operation("StopProjectVersion")
def stop_project_version(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    _, version = engine.version_by_arn(params["ProjectVersionArn"])
    if version.status == "STOPPING":
        return {"Status": "STOPPING"}
    if version.status not in ("RUNNING", "STARTING"):
        raise errors.in_use(
            f"The version {version.name} is {version.status}; only a running model can be stopped."
        )
    version.status = "STOPPING"
    version.status_message = "The model is being stopped."
    version.transition_target = "STOPPED"
    version.transition_message = None
    version.transition_due = engine.due(engine.config.stop_seconds)
    return {"Status": "STOPPING"}
