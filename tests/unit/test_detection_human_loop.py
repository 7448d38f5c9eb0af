"""Human review (Amazon A2I) in detection: loop names, the HumanLoopConfig sent, what the result and
its SNS attributes carry, a name already in use, the loop quota, and an expired adapter (Stubber)."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from pydantic import ValidationError

from lambdas.common.production import ProductionRecord
from lambdas.common.settings import AppSettings, ProjectSettings
from lambdas.detection.detect import Detection, Detector, ImageRef, Label, Throttled
from lambdas.detection.human_loop import HumanLoopRequest, is_name_in_use
from lambdas.detection.results import detection_result, message_attributes
from lambdas.detection.service import DetectionService, human_loop_request

ADAPTER = "arn:aws:rekognition:us-east-1:123456789012:project/moderation/version/a1/1"
FLOW = "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/moderation-review"
IMAGE = ImageRef("bucket", "moderation/inference/posts/a.png", version_id="3HL4kqtJlcpXroDTDmJ", etag="e1")
# botocore model of DetectModerationLabels, HumanLoopConfig.HumanLoopName: min 1, max 63.
NAME_PATTERN = re.compile(r"^[a-z0-9](-*[a-z0-9])*$")
CONDITIONS = '{"Conditions": [{"EvaluationResult": true}]}'
MODERATED = ProjectSettings(
    feature="CONTENT_MODERATION",
    human_loop_flow_definition_arn=FLOW,
    human_loop_content_classifiers=("FreeOfPersonallyIdentifiableInformation", "FreeOfAdultContent"),
)


def stubbed() -> tuple[Any, Stubber]:
    client = boto3.client("rekognition", region_name="us-east-1")
    return client, Stubber(client)


def moderate(client: Any, loop: HumanLoopRequest | None) -> Detection:
    return Detector(client).detect(
        IMAGE,
        feature="CONTENT_MODERATION",
        model_arn=ADAPTER,
        min_confidence=None,
        max_results=10,
        human_loop_request=loop,
    )


def loop_for(image: ImageRef) -> HumanLoopRequest:
    request = human_loop_request(image, MODERATED)
    assert request is not None
    return request


# --- names -----------------------------------------------------------------------------------------
def test_loop_names_fit_the_service_pattern_and_length() -> None:
    images = [
        IMAGE,
        ImageRef("bucket", "Moderation_Project.v2/inference/x.png", version_id=None, etag="abc"),
        ImageRef("b", f"{'x' * 255}/inference/{'y' * 900}.jpg", version_id="v", etag=None),
        ImageRef("b", "___/inference/z.png"),
    ]
    for image in images:
        name = image.human_loop_name()
        assert 1 <= len(name) <= 63, name
        assert NAME_PATTERN.match(name), name


def test_loop_names_are_stable_per_image_version_and_differ_between_images() -> None:
    same = ImageRef(IMAGE.bucket, IMAGE.key, version_id=IMAGE.version_id, etag="other-etag")
    names = {
        IMAGE.human_loop_name(),
        ImageRef(IMAGE.bucket, IMAGE.key, version_id="another-version").human_loop_name(),
        ImageRef(IMAGE.bucket, "moderation/inference/posts/b.png", IMAGE.version_id).human_loop_name(),
        ImageRef("other-bucket", IMAGE.key, version_id=IMAGE.version_id).human_loop_name(),
        ImageRef(IMAGE.bucket, IMAGE.key, version_id=None, etag="e1").human_loop_name(),
        ImageRef(IMAGE.bucket, IMAGE.key, version_id=None, etag="e2").human_loop_name(),
    }
    assert len(names) == 6
    assert same.human_loop_name() == IMAGE.human_loop_name()  # the version id decides, not the ETag
    assert IMAGE.human_loop_name().startswith("moderation-")


# --- settings ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (
            {"human_loop_flow_definition_arn": "arn:aws:sagemaker:us-east-1:123456789012:human-loop/x"},
            "not a flow",
        ),
        (
            {"human_loop_flow_definition_arn": "arn:aws:sagemaker:us-east-1:1234:flow-definition/x"},
            "not a flow",
        ),
        (
            {"human_loop_flow_definition_arn": f"{FLOW.rsplit('/', 1)[0]}/Upper"},
            "not a flow",
        ),
        ({"human_loop_content_classifiers": ("FreeOfAdultContent",)}, "needs human_loop_flow_definition_arn"),
        (
            {"human_loop_flow_definition_arn": FLOW, "human_loop_content_classifiers": ("FreeOfViolence",)},
            "FreeOfAdultContent",
        ),
    ],
)
def test_bad_human_review_settings_name_the_setting(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        ProjectSettings(feature="CONTENT_MODERATION", **fields)


def test_custom_labels_projects_cannot_ask_for_human_loops() -> None:
    with pytest.raises(ValidationError, match="CONTENT_MODERATION projects only"):
        ProjectSettings(feature="CUSTOM_LABELS", human_loop_flow_definition_arn=FLOW)
    assert human_loop_request(IMAGE, ProjectSettings(feature="CONTENT_MODERATION")) is None


# --- the request and the answer --------------------------------------------------------------------
def test_human_loop_config_is_sent_and_the_activation_is_recorded() -> None:
    client, stub = stubbed()
    name = IMAGE.human_loop_name()
    stub.add_response(
        "detect_moderation_labels",
        {
            "ModerationLabels": [{"Name": "Smoking", "Confidence": 71.5, "ParentName": "Drugs"}],
            "ProjectVersion": ADAPTER,
            "HumanLoopActivationOutput": {
                "HumanLoopArn": f"arn:aws:sagemaker:us-east-1:123456789012:human-loop/{name}",
                "HumanLoopActivationReasons": ["ConditionsEvaluation"],
                "HumanLoopActivationConditionsEvaluationResults": CONDITIONS,
            },
        },
        {
            "Image": {"S3Object": {"Bucket": "bucket", "Name": IMAGE.key, "Version": "3HL4kqtJlcpXroDTDmJ"}},
            "ProjectVersion": ADAPTER,
            "HumanLoopConfig": {
                "HumanLoopName": name,
                "FlowDefinitionArn": FLOW,
                "DataAttributes": {
                    "ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation", "FreeOfAdultContent"]
                },
            },
        },
    )
    with stub:
        detection = moderate(client, loop_for(IMAGE))
    stub.assert_no_pending_responses()
    result = detection_result(IMAGE, detection, min_confidence=None, detected_at=0.0)
    assert result["human_loop"] == {
        "name": name,
        "flow_definition_arn": FLOW,
        "status": "activated",
        "arn": f"arn:aws:sagemaker:us-east-1:123456789012:human-loop/{name}",
        "reasons": ["ConditionsEvaluation"],
        "conditions": {"Conditions": [{"EvaluationResult": True}]},
        "already_started": False,
    }
    assert result["model"]["answered_by"] == "adapter"
    attributes = message_attributes(result)
    assert attributes["human_loop"] == {"DataType": "String", "StringValue": "activated"}
    assert attributes["answered_by"] == {"DataType": "String", "StringValue": "adapter"}


def test_an_answer_without_a_loop_arn_did_not_start_review() -> None:
    client, stub = stubbed()
    stub.add_response(
        "detect_moderation_labels",
        {
            "ModerationLabels": [],
            "ProjectVersion": ADAPTER,
            "HumanLoopActivationOutput": {"HumanLoopActivationConditionsEvaluationResults": "{}"},
        },
    )
    with stub:
        detection = moderate(client, loop_for(IMAGE))
    result = detection_result(IMAGE, detection, min_confidence=None, detected_at=0.0)
    assert result["human_loop"]["status"] == "not_activated"
    assert result["human_loop"]["arn"] is None
    assert message_attributes(result)["human_loop"]["StringValue"] == "not_activated"


def test_a_loop_name_in_use_is_not_started_twice_nor_loses_the_image() -> None:
    client, stub = stubbed()
    name = IMAGE.human_loop_name()
    stub.add_client_error(
        "detect_moderation_labels",
        service_error_code="ConflictException",
        service_message=f"A human loop with the name {name} already exists.",
        http_status_code=409,
    )
    # Then the image is classified again without a human loop
    stub.add_response(
        "detect_moderation_labels",
        {"ModerationLabels": [{"Name": "Smoking", "Confidence": 71.5}], "ProjectVersion": ADAPTER},
        {
            "Image": {"S3Object": {"Bucket": "bucket", "Name": IMAGE.key, "Version": "3HL4kqtJlcpXroDTDmJ"}},
            "ProjectVersion": ADAPTER,
        },
    )
    with stub:
        detection = moderate(client, loop_for(IMAGE))
    stub.assert_no_pending_responses()
    assert detection.labels[0].name == "Smoking"
    assert detection.human_loop is not None
    assert detection.human_loop["status"] == "activated"
    assert detection.human_loop["already_started"] is True
    assert detection.human_loop["arn"] == f"arn:aws:sagemaker:us-east-1:123456789012:human-loop/{name}"


def test_only_refusals_of_the_name_count_as_a_loop_in_use() -> None:
    loop = loop_for(IMAGE)
    assert is_name_in_use("InvalidParameterException", "HumanLoopName already exists", loop)
    assert not is_name_in_use("InvalidParameterException", "Requested image should be at least 64 px", loop)
    assert not is_name_in_use("ThrottlingException", f"{loop.name} already exists", loop)


@pytest.mark.parametrize("code", ["HumanLoopQuotaExceededException", "ThrottlingException"])
def test_the_human_loop_quota_waits_like_throttling(code: str) -> None:
    client, stub = stubbed()
    stub.add_client_error("detect_moderation_labels", service_error_code=code, http_status_code=400)
    with stub, pytest.raises(Throttled, match=code):
        moderate(client, loop_for(IMAGE))


# --- an expired adapter ----------------------------------------------------------------------------
def test_an_answer_without_project_version_says_the_base_model_answered() -> None:
    client, stub = stubbed()
    stub.add_response(
        "detect_moderation_labels",
        {"ModerationLabels": [{"Name": "Smoking", "Confidence": 55.0}], "ModerationModelVersion": "7.0"},
    )
    with stub:
        detection = moderate(client, None)
    result = detection_result(IMAGE, detection, min_confidence=None, detected_at=0.0)
    assert result["model"] == {
        "feature": "CONTENT_MODERATION",
        "arn": ADAPTER,
        "adapter_applied": False,
        "answered_by": "base_model",
    }
    assert result["human_loop"] is None
    attributes = message_attributes(result)
    assert attributes["answered_by"]["StringValue"] == "base_model"
    assert "human_loop" not in attributes


def test_the_service_asks_for_the_projects_loop_for_each_image() -> None:
    calls: list[dict[str, Any]] = []
    delivered: list[dict[str, Any]] = []

    class Recorder:
        def detect(self, image: ImageRef, **kwargs: Any) -> Detection:
            calls.append(kwargs)
            return Detection("CONTENT_MODERATION", ADAPTER, (Label("Smoking", 95.0),), True, "adapter")

    class Sink:
        def copy_to_review(self, image: ImageRef, key: str) -> None:
            pass

        def deliver(self, image: ImageRef, result: dict[str, Any]) -> None:
            delivered.append(result)

    service = DetectionService(
        settings=AppSettings(projects={"moderation": MODERATED}),
        production=lambda project: ProductionRecord(project, ADAPTER, "a1", 0.9, "2026-11-01T00:00:00+00:00"),
        detector=Recorder(),  # type: ignore[arg-type]
        sink=Sink(),  # type: ignore[arg-type]
    )
    result = service.classify(IMAGE, now=0.0)
    assert calls[0]["human_loop_request"] == HumanLoopRequest(
        IMAGE.human_loop_name(), FLOW, ("FreeOfPersonallyIdentifiableInformation", "FreeOfAdultContent")
    )
    assert delivered == [result]
    assert result["model"]["answered_by"] == "adapter"
