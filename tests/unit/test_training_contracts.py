"""The workflow contracts: the models the trigger dumps and the definitions read their paths from."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.workflows.model_control import model_control_definition
from infra.workflows.training import training_definition
from infra.workflows.training_states import TrainingTargets
from lambdas.common.contracts import ContractError, checked_fields, field_path
from lambdas.common.settings import ProjectSettings
from lambdas.serving.contracts import ModelControlInput, ModelControlState
from lambdas.training.contracts import FinishRequest, TrainingInput, TrainingState
from lambdas.training.rekognition import DatasetInfo, ProjectInfo
from lambdas.training.trigger import TriggerRequest, execution_input

PROJECT_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/digits/1700000000000"
TARGETS = TrainingTargets(
    bucket_name="data-bucket",
    topic_arn="arn:aws:sns:us-east-1:123456789012:lifecycle",
    **{
        step: f"arn:aws:lambda:us-east-1:123456789012:function:training-{step}"
        for step in ("preflight", "gate", "promote", "retention", "finish", "failure")
    },
)


def _dataset(kind: str) -> DatasetInfo:
    return DatasetInfo(
        dataset_type=kind,
        arn=f"{PROJECT_ARN}/dataset/{kind.lower()}/1",
        status="UPDATE_COMPLETE",
        labeled_entries=30,
        total_entries=30,
        total_labels=3,
    )


def test_a_field_path_names_the_field_and_refuses_one_the_model_lacks() -> None:
    assert field_path(TrainingState, "gate", "production", "version_arn") == "$.gate.production.version_arn"
    # Past a field that holds a service response (a dict), the names are taken as they are.
    assert field_path(TrainingState, "training", "version", "Status") == "$.training.version.Status"
    with pytest.raises(ContractError, match=r"'gate\.decison'"):
        field_path(TrainingState, "gate", "decison")
    with pytest.raises(ContractError, match="no field 'lock'"):
        field_path(TrainingState, "lock")


def test_a_step_payload_must_give_every_required_field_and_no_unknown_one() -> None:
    payload = {"project": "$.project", "lock_token": "$.lock_token", "outcome": "PROMOTED"}
    assert checked_fields(FinishRequest, payload) == payload
    with pytest.raises(ContractError, match=r"missing fields \['lock_token'\]"):
        checked_fields(FinishRequest, {"project": "$.project", "outcome": "PROMOTED"})
    with pytest.raises(ContractError, match=r"unknown fields \['token'\]"):
        checked_fields(FinishRequest, {**payload, "token": "x"})


def test_the_trigger_dumps_an_execution_input_that_validates_against_its_model() -> None:
    payload = execution_input(
        project=ProjectInfo(
            name="digits", arn=PROJECT_ARN, status="CREATED", feature="CUSTOM_LABELS", datasets={}
        ),
        datasets={"TRAIN": _dataset("TRAIN"), "TEST": _dataset("TEST")},
        settings=ProjectSettings(min_inference_units=2),
        version_name="digits-v1",
        lock_token="digits-1",
        request=TriggerRequest("digits", force=True, source="schedule"),
        reason="forced",
    )
    assert json.loads(json.dumps(payload)) == payload  # the state machine receives JSON
    parsed = TrainingInput.model_validate(payload)
    assert parsed.output_prefix == "digits/training-output/"
    assert parsed.trigger.force is True and parsed.trigger.reason == "forced"
    assert parsed.settings.max_inference_units == 2
    assert payload["snapshot"]["train_labeled_entries"] == 30


def test_every_state_path_of_the_training_definition_is_a_field_of_its_contract() -> None:
    definition = training_definition(TARGETS, timeout_seconds=3600)
    assert definition["States"]["Promote?"]["Choices"][0] == {
        "Variable": "$.gate.decision",
        "StringEquals": "PROMOTE",
        "Next": "BlueGreen?",
    }
    # Every top-level name the definition reads from or writes to the state is a contract field.
    names = {path.split(".")[1] for path in _paths(definition)}
    assert names and names <= set(TrainingState.model_fields)


def test_every_input_path_of_the_model_control_definition_is_a_field_of_its_contract() -> None:
    names = {path.split(".")[1] for path in _paths(model_control_definition())}
    assert names <= set(ModelControlState.model_fields)
    assert {"action", "version_arn", "poll_seconds", "max_polls", "ledger_expires_at"} <= names & set(
        ModelControlInput.model_fields
    )


def _paths(definition: Any) -> list[str]:
    """The JSONPaths into the state (a ResultSelector reads the service's response instead)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key != "ResultSelector":
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            found.extend(re.findall(r"(?<![$\w])\$\.[A-Za-z_]\w*", value))

    walk(definition)
    return found
