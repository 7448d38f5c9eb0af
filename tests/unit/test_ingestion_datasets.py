"""The Rekognition integration class against a botocore Stubber (exact requests, no network)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import ANY, Stubber

from lambdas.ingestion.datasets import (
    DatasetBusy,
    DatasetGateway,
    DatasetUnusable,
    UpdateFailed,
    UpdateStillRunning,
)

PROJECT_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/digits/1700000000000"
TRAIN_ARN = f"{PROJECT_ARN.rsplit('/', 1)[0]}/dataset/train/1700000000001"
TEST_ARN = f"{PROJECT_ARN.rsplit('/', 1)[0]}/dataset/test/1700000000002"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def stubbed() -> Iterator[tuple[Stubber, DatasetGateway, FakeClock]]:
    client = boto3.client("rekognition", region_name="us-east-1")
    clock = FakeClock()
    with Stubber(client) as stubber:
        yield stubber, DatasetGateway(client, poll_seconds=1.0, sleep=clock.sleep, clock=clock), clock
        stubber.assert_no_pending_responses()


def described(status: str, total: int = 0, code: str = "SUCCESS", message: str = "") -> dict:
    return {
        "DatasetDescription": {
            "Status": status,
            "StatusMessageCode": code,
            "StatusMessage": message,
            "DatasetStats": {
                "TotalEntries": total,
                "LabeledEntries": total,
                "TotalLabels": 1,
                "ErrorEntries": 0,
            },
        }
    }


def test_ensure_project_creates_project_and_both_datasets_on_first_use(stubbed) -> None:
    stubber, gateway, _ = stubbed
    # Given no project yet
    stubber.add_response(
        "describe_projects",
        {"ProjectDescriptions": []},
        {"ProjectNames": ["digits"], "Features": ["CUSTOM_LABELS"]},
    )
    stubber.add_response(
        "create_project", {"ProjectArn": PROJECT_ARN}, {"ProjectName": "digits", "Feature": "CUSTOM_LABELS"}
    )
    stubber.add_response(
        "describe_projects",
        {"ProjectDescriptions": [{"ProjectArn": PROJECT_ARN, "Status": "CREATED", "Datasets": []}]},
        {"ProjectNames": ["digits"], "Features": ["CUSTOM_LABELS"]},
    )
    stubber.add_response(
        "create_dataset", {"DatasetArn": TRAIN_ARN}, {"ProjectArn": PROJECT_ARN, "DatasetType": "TRAIN"}
    )
    stubber.add_response(
        "create_dataset", {"DatasetArn": TEST_ARN}, {"ProjectArn": PROJECT_ARN, "DatasetType": "TEST"}
    )
    # When ensured / Then everything exists and the creation is reported
    result = gateway.ensure_project("digits", "CUSTOM_LABELS", deadline=100)
    assert result.created_project and result.created_datasets == ["TRAIN", "TEST"]
    assert result.datasets == {"TRAIN": TRAIN_ARN, "TEST": TEST_ARN}


def test_moderation_project_is_created_with_its_feature_and_auto_update(stubbed) -> None:
    stubber, gateway, _ = stubbed
    features = {"ProjectNames": ["moderation"], "Features": ["CONTENT_MODERATION"]}
    arn = PROJECT_ARN.replace("digits", "moderation")
    stubber.add_response("describe_projects", {"ProjectDescriptions": []}, features)
    stubber.add_response(
        "create_project",
        {"ProjectArn": arn},
        {"ProjectName": "moderation", "Feature": "CONTENT_MODERATION", "AutoUpdate": "ENABLED"},
    )
    datasets = [
        {"DatasetType": "TRAIN", "DatasetArn": TRAIN_ARN, "Status": "CREATE_COMPLETE"},
        {"DatasetType": "TEST", "DatasetArn": TEST_ARN, "Status": "CREATE_COMPLETE"},
    ]
    stubber.add_response(
        "describe_projects", {"ProjectDescriptions": [{"ProjectArn": arn, "Datasets": datasets}]}, features
    )
    result = gateway.ensure_project("moderation", "CONTENT_MODERATION", deadline=100)
    assert result.created_project and result.created_datasets == []


def test_concurrent_creation_is_tolerated(stubbed) -> None:
    stubber, gateway, _ = stubbed
    names = {"ProjectNames": ["digits"], "Features": ["CUSTOM_LABELS"]}
    stubber.add_response("describe_projects", {"ProjectDescriptions": []}, names)
    stubber.add_client_error("create_project", "ResourceInUseException")
    stubber.add_response(
        "describe_projects",
        {
            "ProjectDescriptions": [
                {"ProjectArn": PROJECT_ARN, "Datasets": [{"DatasetType": "TRAIN", "DatasetArn": TRAIN_ARN}]}
            ]
        },
        names,
    )
    stubber.add_client_error("create_dataset", "ResourceAlreadyExistsException")
    stubber.add_response(
        "describe_projects",
        {
            "ProjectDescriptions": [
                {
                    "ProjectArn": PROJECT_ARN,
                    "Datasets": [
                        {"DatasetType": "TRAIN", "DatasetArn": TRAIN_ARN},
                        {"DatasetType": "TEST", "DatasetArn": TEST_ARN},
                    ],
                }
            ]
        },
        names,
    )
    result = gateway.ensure_project("digits", "CUSTOM_LABELS", deadline=100)
    assert not result.created_project and result.datasets["TEST"] == TEST_ARN


def test_update_waits_out_in_progress_and_resource_in_use_then_waits_for_completion(stubbed) -> None:
    stubber, gateway, clock = stubbed
    arn = {"DatasetArn": TRAIN_ARN}
    stubber.add_response("describe_dataset", described("UPDATE_IN_PROGRESS"), arn)  # someone else's update
    stubber.add_response("describe_dataset", described("UPDATE_COMPLETE", 5), arn)
    stubber.add_client_error("update_dataset_entries", "ResourceInUseException")  # lost a race
    stubber.add_response("describe_dataset", described("UPDATE_COMPLETE", 5), arn)
    stubber.add_response(
        "update_dataset_entries",
        {},
        {"DatasetArn": TRAIN_ARN, "Changes": {"GroundTruth": b'{"source-ref":"s3://b/k"}'}},
    )
    stubber.add_response("describe_dataset", described("UPDATE_IN_PROGRESS", 5), arn)
    stubber.add_response("describe_dataset", described("UPDATE_COMPLETE", 6), arn)
    result = gateway.update_entries(TRAIN_ARN, b'{"source-ref":"s3://b/k"}', deadline=1000)
    assert result.before["DatasetStats"]["TotalEntries"] == 5
    assert result.after["DatasetStats"]["TotalEntries"] == 6
    assert len(clock.sleeps) == 3


def test_update_failed_status_is_raised_with_the_service_message(stubbed) -> None:
    stubber, gateway, _ = stubbed
    stubber.add_response("describe_dataset", described("CREATE_COMPLETE"), {"DatasetArn": TRAIN_ARN})
    stubber.add_response("update_dataset_entries", {}, {"DatasetArn": TRAIN_ARN, "Changes": ANY})
    stubber.add_response(
        "describe_dataset",
        described("UPDATE_FAILED", code="SERVICE_ERROR", message="boom"),
        {"DatasetArn": TRAIN_ARN},
    )
    with pytest.raises(UpdateFailed, match=r"SERVICE_ERROR.*boom"):
        gateway.update_entries(TRAIN_ARN, b"{}", deadline=1000)


def test_busy_dataset_gives_up_at_the_deadline_without_calling_update(stubbed) -> None:
    stubber, gateway, clock = stubbed
    for _ in range(3):
        stubber.add_response("describe_dataset", described("UPDATE_IN_PROGRESS"), {"DatasetArn": TRAIN_ARN})
    with pytest.raises(DatasetBusy):
        gateway.update_entries(TRAIN_ARN, b"{}", deadline=3.0)
    assert clock.now <= 3.0


def test_own_update_still_running_at_the_deadline_is_reported_as_such(stubbed) -> None:
    stubber, gateway, _ = stubbed
    stubber.add_response("describe_dataset", described("UPDATE_COMPLETE"), {"DatasetArn": TRAIN_ARN})
    stubber.add_response("update_dataset_entries", {}, {"DatasetArn": TRAIN_ARN, "Changes": ANY})
    stubber.add_response("describe_dataset", described("UPDATE_IN_PROGRESS"), {"DatasetArn": TRAIN_ARN})
    with pytest.raises(UpdateStillRunning):
        gateway.update_entries(TRAIN_ARN, b"{}", deadline=0.5)


def test_entries_with_errors_pages_and_keeps_only_our_lines(stubbed) -> None:
    stubber, gateway, _ = stubbed
    bad = {"source-ref": "s3://b/mine.png", "l-metadata": {"errors": [{"code": "ERROR_X", "message": "m"}]}}
    other = {"source-ref": "s3://b/other.png", "errors": [{"code": "ERROR_Y", "message": "n"}]}
    request = {"DatasetArn": TRAIN_ARN, "HasErrors": True, "MaxResults": 100}
    stubber.add_response(
        "list_dataset_entries", {"DatasetEntries": [json.dumps(other)], "NextToken": "t"}, request
    )
    stubber.add_response(
        "list_dataset_entries", {"DatasetEntries": [json.dumps(bad)]}, {**request, "NextToken": "t"}
    )
    found = gateway.entries_with_errors(TRAIN_ARN, ["s3://b/mine.png"])
    assert [(e.source_ref, e.errors[0]["code"]) for e in found] == [("s3://b/mine.png", "ERROR_X")]


def test_a_dataset_being_deleted_is_waited_out_like_a_busy_one(stubbed) -> None:
    stubber, gateway, _ = stubbed
    for _ in range(3):
        stubber.add_response("describe_dataset", described("DELETE_IN_PROGRESS"), {"DatasetArn": TRAIN_ARN})
    with pytest.raises(DatasetBusy):
        gateway.wait_until_idle(TRAIN_ARN, deadline=3.0)


def entry(ref: str) -> str:
    return json.dumps({"source-ref": ref, "l": 1})


def test_present_looks_a_few_lines_up_one_by_one_and_exactly(stubbed) -> None:
    stubber, gateway, _ = stubbed
    request = {"DatasetArn": TRAIN_ARN, "MaxResults": 100}
    # "a.png" is contained in "a.png.bak" too: only an exact match counts
    stubber.add_response(
        "list_dataset_entries",
        {"DatasetEntries": [entry("s3://b/x/a.png.bak")]},
        {**request, "SourceRefContains": "s3://b/x/a.png"},
    )
    stubber.add_response(
        "list_dataset_entries",
        {"DatasetEntries": [entry("s3://b/x/b.png")]},
        {**request, "SourceRefContains": "s3://b/x/b.png"},
    )
    assert gateway.present(TRAIN_ARN, ["s3://b/x/a.png", "s3://b/x/b.png"]) == {"s3://b/x/b.png"}
    stubber.assert_no_pending_responses()


def test_present_lists_many_lines_by_their_common_prefix(stubbed) -> None:
    stubber, gateway, _ = stubbed
    refs = [f"s3://b/digits/train/{i}.png" for i in range(30)]
    request = {"DatasetArn": TRAIN_ARN, "MaxResults": 100, "SourceRefContains": "s3://b/digits/train/"}
    stubber.add_response(
        "list_dataset_entries", {"DatasetEntries": [entry(r) for r in refs[:20]], "NextToken": "t"}, request
    )
    stubber.add_response(
        "list_dataset_entries",
        {"DatasetEntries": [entry(r) for r in refs[21:]]},
        {**request, "NextToken": "t"},
    )
    assert gateway.present(TRAIN_ARN, refs) == set(refs) - {refs[20]}
    stubber.assert_no_pending_responses()


def test_a_dataset_that_failed_to_be_created_by_a_service_error_is_deleted_to_be_created_again(
    stubbed,
) -> None:
    stubber, gateway, _ = stubbed
    failed = described("CREATE_FAILED", code="SERVICE_ERROR", message="An internal error occurred.")
    stubber.add_response("describe_dataset", failed, {"DatasetArn": TRAIN_ARN})
    stubber.add_response("delete_dataset", {}, {"DatasetArn": TRAIN_ARN})
    with pytest.raises(DatasetBusy):
        gateway.wait_until_idle(TRAIN_ARN, deadline=100)
    stubber.assert_no_pending_responses()


def test_a_dataset_that_failed_to_be_created_by_the_client_is_left_to_a_person(stubbed) -> None:
    stubber, gateway, _ = stubbed
    failed = described("CREATE_FAILED", code="CLIENT_ERROR", message="ERROR_MANIFEST_TOO_MANY_LABELS")
    stubber.add_response("describe_dataset", failed, {"DatasetArn": TRAIN_ARN})
    with pytest.raises(DatasetUnusable):
        gateway.wait_until_idle(TRAIN_ARN, deadline=100)
