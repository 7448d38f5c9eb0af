"""Every Task of the shipped state machines is allowed under the state machine's role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from autopilot.local.stepfunctions import definition_of
from tests.local.iam_support import ACCOUNT, REGION, enforcer_for, logical_id

PROJECTS = {"Training/StateMachine/": ["digits", "moderation"], "Serving/ModelControl/": ["digits"]}


def tasks(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        for branch in state.get("Branches", []):
            yield from tasks(branch["States"])
        for member in ("Iterator", "ItemProcessor"):
            if member in state:
                yield from tasks(state[member]["States"])


def sample(value: str, project: str) -> str:
    """A value of the shape the execution input gives a JSONPath or intrinsic of the definition."""
    project_arn = f"arn:aws:rekognition:{REGION}:{ACCOUNT}:project/{project}/1700000000000"
    prefix = project_arn.rsplit("/", 1)[0]
    if "PROJECT#{}" in value:
        return f"PROJECT#{project}"
    if re.search(r"dataset_arn", value):
        return f"{prefix}/dataset/train/1700000000001"
    if re.search(r"ProjectVersionArn|version_arn", value):
        return f"{prefix}/version/{project}.2026-01-01/1700000000002"
    if value.endswith("project_arn"):
        return project_arn
    return "sample"


def parameters(template_value: Any, project: str) -> Any:
    if isinstance(template_value, dict):
        resolved: dict[str, Any] = {}
        for key, value in template_value.items():
            if key.endswith(".$"):
                resolved[key[:-2]] = sample(str(value), project)
            else:
                resolved[key] = parameters(value, project)
        return resolved
    if isinstance(template_value, list):
        return [parameters(item, project) for item in template_value]
    return template_value


@pytest.mark.parametrize("path", sorted(PROJECTS))
def test_every_task_is_allowed_under_the_state_machine_role(template: dict[str, Any], path: str) -> None:
    enforcer, resolver = enforcer_for(template)
    machine = logical_id(template, "AWS::StepFunctions::StateMachine", path)
    principal = enforcer.principal_of(machine, "execution")
    checked = []
    for project in PROJECTS[path]:
        for name, state in tasks(definition_of(resolver, machine)["States"]):
            arguments = parameters(state.get("Parameters") or {}, project)
            enforcer.check_task(principal, state["Resource"], arguments)  # raises when denied
            checked.append(name)
    assert checked
    assert not enforcer.recorder.denied
    assert not enforcer.evaluator.unknown_condition_keys
