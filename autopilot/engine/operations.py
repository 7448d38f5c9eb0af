"""Request dispatch: fault injection, server-side validation, the engine lock, then the handler."""

from __future__ import annotations

from typing import Any

# The operation modules register their handlers on import.
from autopilot.engine import datasets, detection, errors, projects, versions  # noqa: F401
from autopilot.engine.backend import Engine
from autopilot.engine.faults import ERROR_STATUS
from autopilot.engine.registry import REGISTRY, Registration
from autopilot.engine.transitions import refresh
from autopilot.engine.validation import validate_input

OPERATIONS: dict[str, Registration] = REGISTRY


def handle(engine: Engine, operation_name: str, body: Any, region: str) -> dict[str, Any]:
    """Answers one request of the Rekognition JSON protocol (raises `errors.EngineError`)."""
    registration = OPERATIONS.get(operation_name)
    if registration is None:
        raise errors.unknown_operation(operation_name)
    project = _project_hint(body)
    fault = engine.faults.take("throttle", operation_name, project)
    if fault is not None:
        raise errors.throttling(fault.message or "Rate exceeded", engine.config.throttling_status)
    fault = engine.faults.take("error", operation_name, project)
    if fault is not None:
        status = ERROR_STATUS.get(fault.code, 400)
        if fault.code == "ThrottlingException":
            status = engine.config.throttling_status
        raise errors.EngineError(
            fault.code, fault.message or f"Injected {fault.code} for {operation_name}.", status
        )
    params = validate_input(operation_name, body)
    if not registration.locked:
        return registration.handler(engine, params, region)
    with engine.lock:
        changed = refresh(engine)
        result = registration.handler(engine, params, region)
        if changed or registration.mutates:
            engine.save()
        return result


def _project_hint(body: Any) -> str | None:
    """The project a request is about (for faults restricted to one project)."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("ProjectName"), str):
        return str(body["ProjectName"])
    for key in ("ProjectArn", "DatasetArn", "ProjectVersionArn", "ProjectVersion"):
        value = body.get(key)
        if isinstance(value, str) and ":project/" in value:
            return value.split(":project/", 1)[1].split("/", 1)[0]
    listed = body.get("Datasets")
    if isinstance(listed, list) and listed and isinstance(listed[0], dict):
        value = listed[0].get("Arn")
        if isinstance(value, str) and ":project/" in value:
            return value.split(":project/", 1)[1].split("/", 1)[0]
    return None
