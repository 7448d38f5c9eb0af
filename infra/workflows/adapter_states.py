"""The moderation-adapter branch of the training workflow (Rekognition Developer Guide, custom
moderation adapters): a project with Feature CONTENT_MODERATION trains from the manifests the
trigger found (TrainingData, and TestingData assets or AutoCreate), with FeatureConfig when a
confidence threshold is set; models go on to the datasets path (`datasets_start`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infra.workflows.asl import parameters
from infra.workflows.training_states import read
from lambdas.common.constants import FEATURE_CONTENT_MODERATION
from lambdas.common.contracts import checked_fields
from lambdas.training.contracts import PreflightOutput, state_path


def adapter_states(create_version: Callable[..., dict[str, Any]], *, datasets_start: str) -> dict[str, Any]:
    """The choice between the two paths and the adapter states; `create_version(adapter=,
    manifests=)` builds a CreateProjectVersion task ("assets": the test manifest, "auto": the split)."""
    test_manifest = state_path("adapter", "test_manifest")
    has_test_manifest = {
        "And": [{"Variable": test_manifest, "IsPresent": True}, {"Variable": test_manifest, "IsNull": False}]
    }
    has_threshold = {"Variable": state_path("settings", "moderation_confidence_threshold"), "IsNumeric": True}
    return {
        "TrainsFromManifests?": {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": state_path("settings", "feature"),
                    "StringEquals": FEATURE_CONTENT_MODERATION,
                    "Next": "AdapterPreflight",
                }
            ],
            "Default": datasets_start,
        },
        "AdapterPreflight": {
            "Type": "Pass",
            "Comment": "The trigger read the manifests' versions and line counts",
            "Parameters": parameters(
                checked_fields(
                    PreflightOutput,
                    {
                        "task": "moderation",
                        "description": read("adapter", "description"),
                        "snapshot": read("snapshot"),
                    },
                )
            ),
            "ResultPath": state_path("preflight"),
            "Next": "AdapterRequest?",
        },
        "AdapterRequest?": {
            "Type": "Choice",
            "Choices": [
                {"And": [has_test_manifest, has_threshold], "Next": "CreateAdapterVersion"},
                {**has_test_manifest, "Next": "CreateAdapterVersionWithoutThreshold"},
                {**has_threshold, "Next": "CreateAutoSplitAdapterVersion"},
            ],
            "Default": "CreateAutoSplitAdapterVersionWithoutThreshold",
        },
        "CreateAdapterVersion": create_version(adapter=True, manifests="assets"),
        "CreateAdapterVersionWithoutThreshold": create_version(adapter=False, manifests="assets"),
        "CreateAutoSplitAdapterVersion": create_version(adapter=True, manifests="auto"),
        "CreateAutoSplitAdapterVersionWithoutThreshold": create_version(adapter=False, manifests="auto"),
    }
