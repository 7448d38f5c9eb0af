"""Each function's environment in the synthesized template is the one its handler validates."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.common.config import (
    ControllerEnvironment,
    DetectionEnvironment,
    FunctionEnvironment,
    GuardEnvironment,
    IngestionEnvironment,
)
from lambdas.training.environment import PreflightEnvironment, TrainingEnvironment, TriggerEnvironment
from tests.infra.conftest import Synthesized

POWERTOOLS = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
HANDLERS: dict[str, type[FunctionEnvironment]] = {
    "lambdas.ingestion.handler.handle": IngestionEnvironment,
    "lambdas.detection.handler.handle": DetectionEnvironment,
    "lambdas.guard.handler.handle": GuardEnvironment,
    "lambdas.serving.controller.handle": ControllerEnvironment,
    "lambdas.training.handlers.trigger.handle": TriggerEnvironment,
    "lambdas.training.handlers.preflight.handle": PreflightEnvironment,
    **{
        f"lambdas.training.handlers.{step}.handle": TrainingEnvironment
        for step in ("gate", "promote", "retention", "finish", "failure", "execution_end")
    },
}
# The functions that read the application settings from SSM.
READS_SETTINGS = {
    "lambdas.ingestion.handler.handle",
    "lambdas.detection.handler.handle",
    "lambdas.guard.handler.handle",
    "lambdas.serving.controller.handle",
    "lambdas.training.handlers.trigger.handle",
}


def _variables(template: dict[str, Any], handler: str) -> set[str]:
    found = [
        resource["Properties"].get("Environment", {}).get("Variables", {})
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function" and resource["Properties"].get("Handler") == handler
    ]
    assert len(found) == 1, f"{handler}: {len(found)} functions"
    return set(found[0])


@pytest.mark.parametrize("handler", sorted(HANDLERS))
def test_every_variable_is_one_the_handler_reads_and_none_it_needs_is_missing(
    whole_stack: Synthesized, handler: str
) -> None:
    model = HANDLERS[handler]
    declared = {info.alias for info in model.model_fields.values()}
    required = {info.alias for info in model.model_fields.values() if info.is_required()}
    variables = _variables(whole_stack.template, handler) - POWERTOOLS
    assert variables <= declared, f"{handler} gets variables it never reads: {variables - declared}"
    assert required <= variables, f"{handler} lacks {required - variables}"
    assert ("SETTINGS_PARAMETER_NAME" in variables) == (handler in READS_SETTINGS)


def test_the_detection_queue_reaches_the_controller_and_the_guard(whole_stack: Synthesized) -> None:
    for handler in ("lambdas.serving.controller.handle", "lambdas.guard.handler.handle"):
        assert "DETECTION_QUEUE_URL" in _variables(whole_stack.template, handler)


def test_variables_by_field_name_use_the_documented_variable_names() -> None:
    assert IngestionEnvironment.variables(
        bucket="data",
        lifecycle_topic_arn="arn:aws:sns:us-east-1:123456789012:life",
        state_table="state",
        idempotency_table="idem",
        settings_parameter="/autopilot/settings",
        queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/ingestion",
        flush_delay_seconds=20,
        dataset_poll_seconds=5,
        retry_hours=24.0,
    ) == {
        "BUCKET_NAME": "data",
        "LIFECYCLE_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:life",
        "STATE_TABLE_NAME": "state",
        "IDEMPOTENCY_TABLE_NAME": "idem",
        "SETTINGS_PARAMETER_NAME": "/autopilot/settings",
        "INGESTION_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/ingestion",
        "INGESTION_FLUSH_DELAY_SECONDS": "20",
        "DATASET_POLL_SECONDS": "5",
        "INGESTION_RETRY_HOURS": "24.0",
    }
    assert GuardEnvironment.variables(state_table="s", lifecycle_topic="t", detection_queue_url=None) == {
        "STATE_TABLE_NAME": "s",
        "LIFECYCLE_TOPIC_ARN": "t",
    }


def test_an_unknown_or_missing_field_is_named() -> None:
    with pytest.raises(TypeError, match="no field queue"):
        GuardEnvironment.variables(state_table="s", lifecycle_topic="t", queue="q")
    with pytest.raises(TypeError, match="needs a value for state_machine_arn"):
        ControllerEnvironment.variables(state_table="s", lifecycle_topic="t")


def test_the_handler_reads_back_what_the_stack_writes() -> None:
    written = DetectionEnvironment.variables(
        detections_topic="arn:aws:sns:us-east-1:123456789012:detections",
        state_table="state",
        idempotency_table="idem",
        queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/detection",
        settings_parameter="/autopilot/settings",
    )
    read = DetectionEnvironment.from_environ(written)
    assert (read.queue_url, read.event_bus, read.settings_parameter) == (
        "https://sqs.us-east-1.amazonaws.com/123456789012/detection",
        "default",
        "/autopilot/settings",
    )
