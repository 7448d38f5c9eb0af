"""Every state machine of the synthesized template, checked the way AWS reads it.

- Each Retry/Catch `ErrorEquals` name is one Step Functions raises: `States.*` names from the
  documented list, Rekognition names from the botocore service model with the aws-sdk naming rule.
- Each definition passes an Amazon States Language validator (statelint).
- No selection of a list element can fail with an uncatchable `States.Runtime`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from statelint.config import Config
from statelint.linter import Linter
from statelint.problem import ProblemType

from autopilot.local.stepfunctions import STATE_MACHINE_TYPE, definition_of
from autopilot.local.template import Resolver, synth_template

# "Handling errors in Step Functions workflows", Error names:
# https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
STATES_ERRORS = {
    "States.ALL",
    "States.DataLimitExceeded",
    "States.ExceedToleratedFailureThreshold",
    "States.HeartbeatTimeout",
    "States.Http.Socket",
    "States.IntrinsicFailure",
    "States.ItemReaderFailed",
    "States.NoChoiceMatched",
    "States.ParameterPathFailure",
    "States.Permissions",
    "States.ResultPathMatchFailure",
    "States.ResultWriterFailed",
    "States.Runtime",
    "States.TaskFailed",
    "States.Timeout",
    "States.QueryEvaluationError",
    "States.BranchFailed",
}
REKOGNITION_TASK = "arn:aws:states:::aws-sdk:rekognition:"
# statelint wants BackoffRate written as a float (2.0); CDK writes whole numbers as JSON integers
# (2). The States Language defines BackoffRate as a number >= 1.0 and Step Functions accepts 2.
IGNORED_LINT = {ProblemType.FLOAT}


def _rekognition_sfn_names() -> set[str]:
    """The rule of "Learning to use AWS service SDK integrations in Step Functions", written out
    here rather than imported, so the module the workflows use is checked against it."""
    model = botocore.session.get_session().get_service_model("rekognition")
    shapes = {s.name for op in model.operation_names for s in model.operation_model(op).error_shapes}
    return {f"Rekognition.{s}" if s.endswith("Exception") else f"Rekognition.{s}Exception" for s in shapes}


@pytest.fixture(scope="module")
def definitions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    template = synth_template(outdir=str(tmp_path_factory.mktemp("definitions-cdk")))
    resources = template["Resources"]

    def placeholder(logical_id: str, attribute: str | None) -> Any:
        if logical_id not in resources:
            return None
        service = resources[logical_id]["Type"].split("::")[1].lower()
        return logical_id if attribute is None else f"arn:aws:{service}:us-east-1:123456789012:{logical_id}"

    resolver = Resolver(template, fallback=placeholder)
    machines = {lid: definition_of(resolver, lid) for lid in resolver.resources_of_type(STATE_MACHINE_TYPE)}
    assert any(lid.startswith("TrainingStateMachine") for lid in machines), sorted(machines)
    assert any(lid.startswith("ServingModelControl") for lid in machines), sorted(machines)
    return machines


def _states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, including those of Parallel branches and Map iterators."""
    for name, state in definition["States"].items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _states(branch)
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from _states(state[key])


def _error_entries(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str, list[str]]]:
    for name, state in _states(definition):
        for field in ("Retry", "Catch"):
            for entry in state.get(field, []):
                yield name, state, field, entry["ErrorEquals"]


# --- error names --------------------------------------------------------------------------------
def test_every_rekognition_error_name_is_one_step_functions_raises(
    definitions: dict[str, dict[str, Any]],
) -> None:
    raised = _rekognition_sfn_names()
    seen: set[str] = set()
    wrong = []
    for machine, definition in definitions.items():
        for state_name, state, field, names in _error_entries(definition):
            for error in names:
                if error.lower().startswith("rekognition."):
                    seen.add(error)
                    if error not in raised:
                        wrong.append(f"{machine}.{state_name}.{field}: {error} is never raised")
                    elif not str(state.get("Resource", "")).startswith(REKOGNITION_TASK):
                        wrong.append(f"{machine}.{state_name}.{field}: {error} on a non-Rekognition task")
    assert not wrong, "\n".join(wrong)
    # The names the workflows wait out, spelled as the Step Functions guide spells them
    assert {
        "Rekognition.ThrottlingException",
        "Rekognition.InternalServerErrorException",
        "Rekognition.ProvisionedThroughputExceededException",
        "Rekognition.ResourceInUseException",
    } <= seen


def test_every_states_error_name_is_a_documented_one(definitions: dict[str, dict[str, Any]]) -> None:
    wrong = []
    for machine, definition in definitions.items():
        for state_name, _, field, names in _error_entries(definition):
            for error in names:
                if error.lower().startswith("states.") and error not in STATES_ERRORS:
                    wrong.append(f"{machine}.{state_name}.{field}: {error}")
                if "States.ALL" in names and names != ["States.ALL"]:
                    wrong.append(f"{machine}.{state_name}.{field}: States.ALL must stand alone ({names})")
    assert not wrong, "\n".join(wrong)


def test_every_rekognition_task_waits_out_throttling_and_server_errors(
    definitions: dict[str, dict[str, Any]],
) -> None:
    missing = []
    for machine, definition in definitions.items():
        for state_name, state in _states(definition):
            if not str(state.get("Resource", "")).startswith(REKOGNITION_TASK):
                continue
            retried = {error for entry in state.get("Retry", []) for error in entry["ErrorEquals"]}
            for error in ("Rekognition.ThrottlingException", "Rekognition.InternalServerErrorException"):
                if error not in retried:
                    missing.append(f"{machine}.{state_name}: no Retry on {error}")
    assert not missing, "\n".join(missing)


# --- ASL validation ------------------------------------------------------------------------------
def test_every_definition_passes_the_states_language_validator(
    definitions: dict[str, dict[str, Any]],
) -> None:
    config = Config(ignored_problem_types=IGNORED_LINT)
    problems = {machine: Linter.validate(json.dumps(d), config) for machine, d in definitions.items()}
    assert problems and all(not found for found in problems.values()), problems


def test_the_validator_refuses_a_broken_definition(definitions: dict[str, dict[str, Any]]) -> None:
    # A control: the same definition with a transition to a state that does not exist.
    broken = copy.deepcopy(next(iter(definitions.values())))
    start = broken["StartAt"]
    broken["States"][start].pop("End", None)
    broken["States"][start]["Next"] = "NoSuchState"
    problems = Linter.validate(json.dumps(broken), Config(ignored_problem_types=IGNORED_LINT))
    assert any("NoSuchState" in problem for problem in problems), problems


# --- no uncaught States.Runtime -------------------------------------------------------------------
_ELEMENT = re.compile(r"^(\$(?:\.[A-Za-z_][\w]*)*)\.(\w+)\[0\]")


def _selections(value: Any) -> Iterator[str]:
    """JSONPath strings (and intrinsic arguments) that select the first element of a list."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _selections(item)
    elif isinstance(value, list):
        for item in value:
            yield from _selections(item)
    elif isinstance(value, str) and ("[0]" in value or re.search(r"ArrayGetItem\(.*,\s*0\)", value)):
        yield value


def _predecessors(definition: dict[str, Any], target: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, state in definition["States"].items():
        nexts = [state.get("Next"), state.get("Default")]
        nexts += [rule.get("Next") for rule in state.get("Choices", [])]
        nexts += [catch.get("Next") for catch in state.get("Catch", [])]
        if target in nexts:
            found.append((name, state))
    return found


def test_every_first_element_selection_is_guarded_by_a_count(definitions: dict[str, dict[str, Any]]) -> None:
    """`$.list[0]` of an empty list raises States.Runtime, which no Catch catches: a selection is
    only allowed in a Pass state reached solely from a Choice that branches away on count 0."""
    problems = []
    guarded = 0
    for machine, definition in definitions.items():
        for name, state in definition["States"].items():
            fields = {
                k: state[k] for k in ("Parameters", "ResultSelector", "InputPath", "OutputPath") if k in state
            }
            for selection in _selections(fields):
                where = f"{machine}.{name}: {selection}"
                match = _ELEMENT.match(selection)
                if state["Type"] != "Pass" or match is None:
                    problems.append(f"{where} is not a guarded Pass selection")
                    continue
                count = f"{match.group(1)}.count"
                for before, choice in _predecessors(definition, name) or [("(none)", {})]:
                    rules = choice.get("Choices", [])
                    ok = choice.get("Type") == "Choice" and any(
                        rule.get("Variable") == count
                        and rule.get("NumericEquals") == 0
                        and rule["Next"] != name
                        for rule in rules
                    )
                    if not ok:
                        problems.append(f"{where} is reached from {before} without a check of {count} == 0")
                guarded += 1
    assert not problems, "\n".join(problems)
    # The training polls (training, blue/green start) and the serving poll select one version each
    assert guarded >= 3
