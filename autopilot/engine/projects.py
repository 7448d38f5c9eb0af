"""CreateProject, DescribeProjects, DeleteProject."""

from __future__ import annotations

from typing import Any

from autopilot.engine import errors
from autopilot.engine.arns import project_arn
from autopilot.engine.backend import Engine
from autopilot.engine.clock import epoch_ms
from autopilot.engine.moderation import CONTENT_MODERATION, CUSTOM_LABELS
from autopilot.engine.pagination import paged_response
from autopilot.engine.registry import operation
from autopilot.engine.state import Project


@operation("CreateProject")
def create_project(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    name = params["ProjectName"]
    if (region, name) in engine.projects:
        raise errors.in_use(f"A project named {name} already exists in {region}.")
    feature = params.get("Feature", CUSTOM_LABELS)
    auto_update = params.get("AutoUpdate")
    if feature == CONTENT_MODERATION and auto_update is None:
        raise errors.invalid_parameter("AutoUpdate is required when Feature is CONTENT_MODERATION.")
    if feature == CUSTOM_LABELS:
        auto_update = None  # applies to adapters only; ignored for Custom Labels projects
    now = engine.now()
    project = Project(
        name=name,
        arn=project_arn(region, engine.config.account_id, name, epoch_ms(now)),
        region=region,
        created=now,
        status="CREATED",
        feature=feature,
        auto_update=auto_update,
        tags=dict(params.get("Tags") or {}),
    )
    engine.projects[(region, name)] = project
    return {"ProjectArn": project.arn}


def dataset_metadata(project: Project) -> list[dict[str, Any]]:
    out = []
    for dataset_type in ("TRAIN", "TEST"):
        dataset = project.datasets.get(dataset_type)
        if dataset is None:
            continue
        out.append(
            {
                "CreationTimestamp": dataset.created,
                "DatasetType": dataset.dataset_type,
                "DatasetArn": dataset.arn,
                "Status": dataset.status,
                "StatusMessage": dataset.status_message,
                "StatusMessageCode": dataset.status_code,
            }
        )
    return out


def describe(project: Project) -> dict[str, Any]:
    description: dict[str, Any] = {
        "ProjectArn": project.arn,
        "CreationTimestamp": project.created,
        "Status": project.status,
        "Datasets": dataset_metadata(project),
        "Feature": project.feature,
    }
    if project.auto_update is not None:
        description["AutoUpdate"] = project.auto_update
    return description


@operation("DescribeProjects", mutates=False)
def describe_projects(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    names = params.get("ProjectNames")
    features = params.get("Features") or [CUSTOM_LABELS]
    projects = sorted(
        (p for (r, _), p in engine.projects.items() if r == region),
        key=lambda p: p.created,
        reverse=True,
    )
    selected = [p for p in projects if p.feature in features and (names is None or p.name in names)]
    context = ["DescribeProjects", region, names, features]
    return paged_response(selected, params, context, "ProjectDescriptions", describe)


@operation("DeleteProject")
def delete_project(engine: Engine, params: dict[str, Any], region: str) -> dict[str, Any]:
    project = engine.project_by_arn(params["ProjectArn"])
    if project.versions:
        raise errors.in_use(
            f"The project {project.name} still has {len(project.versions)} version(s); delete them first "
            "(DeleteProjectVersion)."
        )
    strict = engine.config.delete_project_requires_no_datasets
    if project.datasets and strict and project.status != "DELETING":
        # Developer Guide, "Deleting a project (SDK)": "Before you can delete a project, you must
        # first delete all models and datasets in the project." (stricter than the API reference)
        raise errors.in_use(
            f"The project {project.name} still has its {' and '.join(sorted(project.datasets))} "
            "dataset(s); delete them first (DeleteDataset) and wait until they are gone."
        )
    busy = [d.dataset_type for d in project.datasets.values() if d.status.endswith("_IN_PROGRESS")]
    if busy:
        raise errors.in_use(
            f"The project's {', '.join(busy)} dataset is being created or updated; try again later."
        )
    if project.status != "DELETING":
        project.status = "DELETING"
        project.delete_due = engine.due(engine.config.delete_seconds)
        for dataset in project.datasets.values():
            dataset.status = "DELETE_IN_PROGRESS"
    return {"Status": "DELETING"}
