"""The ingestion handler end to end on one machine: moto (S3, SQS, SNS, DynamoDB, SSM) and the
local Custom Labels engine, driven with SQS events built from the S3 notifications."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from moto import mock_aws

from autopilot.engine.testing import running_engine
from bench.ingestion_burst import png_bytes
from lambdas.common import aws, config
from lambdas.common.constants import (
    ENV_INGESTION_QUEUE_URL,
    EVENT_ENTRIES_APPLIED,
    EVENT_ENTRIES_REJECTED,
    EVENT_PROJECT_CREATED,
)
from lambdas.ingestion import handler
from lambdas.ingestion.objects import S3ObjectSource
from lambdas.ingestion.staging import DatasetLease
from lambdas.ingestion.validation import ImageInfo
from tests.unit.ingestion_world import FakeContext, OfflineIngestion

pytestmark = pytest.mark.xdist_group("ingestion-engine")


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[OfflineIngestion]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # moto must answer every service but Rekognition
    with mock_aws(), running_engine(time_scale=0.001) as engine:
        offline = OfflineIngestion()
        offline.engine = engine  # type: ignore[attr-defined]
        offline.activate(monkeypatch)
        yield offline
    aws.reset_clients()
    config.clear_cache()
    handler.reset_runtime()


def events_of(world: OfflineIngestion, kind: str) -> list[dict]:
    return [e for e in world.events() if e["type"] == kind]


def manifest_line(world: OfflineIngestion, key: str, label: str) -> str:
    return json.dumps(
        {
            "source-ref": f"s3://{world.bucket}/{key}",
            "cls": 0,
            "cls-metadata": {
                "class-name": label,
                "type": "groundtruth/image-classification",
                "confidence": 1,
            },
        }
    )


def test_uploaded_image_becomes_one_labeled_entry(world: OfflineIngestion) -> None:
    # Given an image uploaded under digits/train/<label>/ (moto sends the notification, key encoded)
    world.put("digits/train/seven up/my photo é.png", png_bytes())
    # When the notifications and then the handler's own flush requests are delivered
    report = world.drain()
    # Then the TRAIN dataset holds exactly that image, labeled with the folder name
    entries = world.dataset_entries("digits", "TRAIN")
    assert [e["source-ref"] for e in entries] == [f"s3://{world.bucket}/digits/train/seven up/my photo é.png"]
    assert entries[0]["autopilot-label-metadata"]["class-name"] == "seven up"
    assert report.failures == 0
    # And the project creation and the applied counts were published
    created = events_of(world, EVENT_PROJECT_CREATED)
    assert created and created[0]["detail"]["created_datasets"] == ["TRAIN", "TEST"]
    applied = events_of(world, EVENT_ENTRIES_APPLIED)
    assert applied[0]["detail"]["entries_sent"] == 1 and applied[0]["detail"]["entries_added"] == 1


def test_redelivered_upload_yields_one_entry(world: OfflineIngestion) -> None:
    # Given one upload whose notification arrives twice, once after the entry was applied
    message = world.upload("digits/test/3/a.png", png_bytes(80, 80))
    world.invoke([message, message])
    world.drain()
    world.invoke([message])
    world.drain()
    # Then the TEST dataset holds one entry
    assert len(world.dataset_entries("digits", "TEST")) == 1


def test_rejections_are_published_and_valid_neighbours_still_go_in(world: OfflineIngestion) -> None:
    # Given one good image and four bad uploads in the same batch
    messages = [
        world.upload("digits/train/1/good.png", png_bytes()),
        world.upload("digits/train/1/small.png", png_bytes(32, 32)),
        world.upload("digits/train/1/notes.png", b"just text"),
        world.upload("digits/train/1/banner.png", png_bytes(4000, 100)),
        world.upload("cats/train/tabby/a.png", png_bytes()),
    ]
    response = world.invoke(messages)
    world.drain()
    # Then no record failed, the good image is an entry, and each rejection names key and reason
    assert response["batchItemFailures"] == []
    assert [e["source-ref"].rsplit("/", 1)[1] for e in world.dataset_entries("digits", "TRAIN")] == [
        "good.png"
    ]
    rejected = {
        r["key"]: r["reason"]
        for e in events_of(world, EVENT_ENTRIES_REJECTED)
        for r in e["detail"]["rejections"]
    }
    assert "between 64 and 4096" in rejected["digits/train/1/small.png"]
    assert "not a PNG or JPEG" in rejected["digits/train/1/notes.png"]
    assert "aspect ratio" in rejected["digits/train/1/banner.png"]
    assert "cdk.json" in rejected["cats/train/tabby/a.png"]


def jpeg_bytes(size: tuple[int, int] = (96, 96)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_truncated_jpeg_and_png_and_bad_label_folders_are_rejected(world: OfflineIngestion) -> None:
    # Given complete images, uploads cut short, and label folders the service would not take
    jpeg, png = jpeg_bytes(), png_bytes(96, 96)
    messages = [
        world.upload("digits/train/1/whole.jpg", jpeg),
        world.upload("digits/train/1/whole.png", png),
        world.upload("digits/train/1/cut.jpg", jpeg[: len(jpeg) * 2 // 3]),
        world.upload("digits/train/1/cut.png", png[:-12]),
        world.upload(f"digits/train/{'x' * 300}/a.png", png),
        world.upload("digits/train/se\tven/a.png", png),
        world.upload("digits/train/ seven /a.png", png),
    ]
    assert world.invoke(messages)["batchItemFailures"] == []
    world.drain()
    # Then only the complete images are entries, and each other upload is rejected with its key
    found = sorted(e["source-ref"].rsplit("/", 1)[1] for e in world.dataset_entries("digits", "TRAIN"))
    assert found == ["whole.jpg", "whole.png"]
    rejected = {
        r["key"]: r["reason"]
        for e in events_of(world, EVENT_ENTRIES_REJECTED)
        for r in e["detail"]["rejections"]
    }
    assert "end-of-image marker" in rejected["digits/train/1/cut.jpg"]
    assert "IEND" in rejected["digits/train/1/cut.png"]
    assert "Rename the folder" in rejected[f"digits/train/{'x' * 300}/a.png"]
    assert "control characters" in rejected["digits/train/se\tven/a.png"]
    assert "starts or ends with a space" in rejected["digits/train/ seven /a.png"]


def test_twenty_images_survive_three_failed_updates_in_a_row(world: OfflineIngestion) -> None:
    # Given a project with its datasets, 20 valid images, and a service whose next three dataset
    # updates end UPDATE_FAILED (SERVICE_ERROR)
    world.invoke([world.upload("digits/train/0/first.png", png_bytes())])
    world.drain()
    world.engine.faults.fail_dataset_update(count=3)  # type: ignore[attr-defined]
    messages = [world.upload(f"digits/train/{i % 2}/img-{i}.png", png_bytes()) for i in range(20)]
    world.invoke(messages)
    # When every flush request is delivered (the handler asks again after each service error)
    world.drain(max_rounds=20)
    # Then all 20 are entries and nothing was rejected
    assert len(world.dataset_entries("digits", "TRAIN")) == 21
    assert world.engine.faults.list() == []  # type: ignore[attr-defined]
    assert events_of(world, EVENT_ENTRIES_REJECTED) == []


def test_a_dataset_creation_failed_by_the_service_is_redone(world: OfflineIngestion) -> None:
    # Given a service whose first dataset creation ends CREATE_FAILED (SERVICE_ERROR)
    world.engine.faults.fail_dataset_update(count=1)  # type: ignore[attr-defined]
    # When an image is uploaded and every flush request delivered
    world.invoke([world.upload("digits/train/3/a.png", png_bytes())])
    world.drain(max_rounds=20)
    # Then the failed dataset was deleted and created again, and the image is its entry
    assert world.engine.faults.list() == []  # type: ignore[attr-defined]
    assert len(world.dataset_entries("digits", "TRAIN")) == 1
    assert events_of(world, EVENT_ENTRIES_REJECTED) == []


def test_a_late_redelivery_after_a_relabel_leaves_the_new_label(world: OfflineIngestion) -> None:
    # Given an image uploaded under train/cat/, applied, then relabelled "dog" by a manifest line
    upload = world.upload("digits/train/cat/pet.png", png_bytes())
    world.invoke([upload])
    world.drain()
    relabel = manifest_line(world, "digits/train/cat/pet.png", "dog")
    world.invoke([world.upload("digits/manifests/train/relabel.manifest", relabel.encode())])
    world.drain()
    # When the old upload's notification is delivered again
    world.invoke([upload])
    world.drain()
    # Then the entry keeps the new label
    (entry,) = world.dataset_entries("digits", "TRAIN")
    assert entry["cls-metadata"]["class-name"] == "dog" and "autopilot-label" not in entry


def test_a_corrected_manifest_re_uploaded_under_the_same_key_is_applied(world: OfflineIngestion) -> None:
    # Given a manifest uploaded and applied (moto sends the notifications, as the local runtime does)
    key = "digits/manifests/train/labels.manifest"
    world.put(key, manifest_line(world, "digits/images/a.png", "cat").encode())
    world.drain()
    # When a corrected version is uploaded under the same key
    world.put(key, manifest_line(world, "digits/images/a.png", "dog").encode())
    world.drain()
    # Then the correction is applied (a new version and sequencer: not a duplicate)
    (entry,) = world.dataset_entries("digits", "TRAIN")
    assert entry["cls-metadata"]["class-name"] == "dog"


def test_manifest_lines_are_applied_and_bad_lines_reported_by_number(world: OfflineIngestion) -> None:
    # Given a manifest with two image-level lines, two bad lines and one object-localization line,
    # in a project whose first line makes it an image-level project
    detection = {
        "source-ref": f"s3://{world.bucket}/digits/images/boxes.jpg",
        "bounding-box": {
            "image_size": [{"width": 200, "height": 100, "depth": 3}],
            "annotations": [{"class_id": 0, "left": 10, "top": 10, "width": 50, "height": 40}],
        },
        "bounding-box-metadata": {
            "objects": [{"confidence": 1}],
            "class-map": {"0": "Echo"},
            "type": "groundtruth/object-detection",
        },
    }
    body = "\n".join(
        [
            manifest_line(world, "digits/images/a.png", "cat"),
            "{not json",
            json.dumps(detection),
            manifest_line(world, "digits/images/b.png", "dog").replace(world.bucket, "other-bucket"),
            manifest_line(world, "digits/images/c.png", "dog"),
        ]
    )
    world.put("digits/manifests/train/batch.manifest", body.encode())
    world.drain()
    refs = sorted(e["source-ref"].rsplit("/", 1)[1] for e in world.dataset_entries("digits", "TRAIN"))
    assert refs == ["a.png", "c.png"]
    rejected = [r for e in events_of(world, EVENT_ENTRIES_REJECTED) for r in e["detail"]["rejections"]]
    assert {r["key"] for r in rejected} == {"digits/manifests/train/batch.manifest"}
    assert sorted(r["line"] for r in rejected) == [2, 3, 4]
    (boxes,) = [r for r in rejected if r["line"] == 3]
    assert "bounding boxes" in boxes["reason"] and "image-level labels" in boxes["reason"]


def test_busy_dataset_defers_the_flush_without_failing_or_losing_anything(world: OfflineIngestion) -> None:
    # Given another invocation holds the dataset's lease
    lease = DatasetLease(world.state_table)
    assert lease.acquire("digits", "TRAIN", "someone-else", 600)
    world.invoke([world.upload("digits/train/2/a.png", png_bytes())])
    flush_requests = world.take_messages()
    # When the flush request is delivered
    response = world.invoke(flush_requests)
    # Then the record succeeds (no receive count burnt), nothing is applied, a new request is queued
    assert response["batchItemFailures"] == []
    assert world.dataset_entries("digits", "TRAIN") == []
    retry = world.take_messages()
    assert [json.loads(m["Body"])["type"] for m in retry] == [handler.FLUSH_REQUEST]
    # And once the lease is free the entry goes in
    lease.release("digits", "TRAIN", "someone-else")
    world.invoke(retry)
    world.drain()
    assert len(world.dataset_entries("digits", "TRAIN")) == 1


def test_update_running_from_elsewhere_is_waited_out(world: OfflineIngestion) -> None:
    # Given the dataset exists and someone else's update is in progress
    world.invoke([world.upload("digits/train/1/first.png", png_bytes())])
    world.drain()
    client = aws.client("rekognition")
    project = client.describe_projects(ProjectNames=["digits"])["ProjectDescriptions"][0]
    train = next(d["DatasetArn"] for d in project["Datasets"] if d["DatasetType"] == "TRAIN")
    other = manifest_line(world, "digits/elsewhere/x.png", "x")
    client.update_dataset_entries(DatasetArn=train, Changes={"GroundTruth": other.encode()})
    # When a new upload is flushed meanwhile
    world.invoke([world.upload("digits/train/1/second.png", png_bytes())])
    report = world.drain()
    # Then it waited for the running update and applied its line
    names = sorted(e["source-ref"].rsplit("/", 1)[1] for e in world.dataset_entries("digits", "TRAIN"))
    assert names == ["first.png", "second.png", "x.png"] and report.failures == 0


def test_moderation_project_is_created_with_its_feature(world: OfflineIngestion) -> None:
    world.invoke([world.upload("moderation/train/Smoking/a.png", png_bytes())])
    world.drain()
    client = aws.client("rekognition")
    found = client.describe_projects(ProjectNames=["moderation"], Features=["CONTENT_MODERATION"])
    assert found["ProjectDescriptions"][0]["Feature"] == "CONTENT_MODERATION"
    # An adapter project holds no dataset: its lines are in the training manifest in S3.
    assert found["ProjectDescriptions"][0].get("Datasets", []) == []
    body = world.s3.get_object(Bucket=world.bucket, Key="moderation/adapter-manifests/train.manifest")["Body"]
    assert len(body.read().splitlines()) == 1


def test_invalid_environment_names_the_variable(
    world: OfflineIngestion, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_INGESTION_QUEUE_URL, "not-a-url")
    with pytest.raises(ValueError, match=ENV_INGESTION_QUEUE_URL):
        handler.IngestionEnvironment.from_environ()


def test_unexpected_error_fails_only_its_record(
    world: OfflineIngestion, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given S3 fails for one object of the batch (not a user error: SQS must retry it). The
    # notifications are the ones S3 sends (versionId, sequencer), delivered by this test alone:
    # moto's own copies are dropped, so nothing but the SQS retry below can bring the image in.
    messages = [world.upload(f"digits/train/4/{name}.png", png_bytes()) for name in ("a", "flaky", "c")]
    assert len(world.take_messages()) == len(messages)
    original = S3ObjectSource.read_image_info

    def flaky(self: S3ObjectSource, bucket: str, key: str, version_id: str | None) -> ImageInfo:
        if "flaky" in key:
            raise ConnectionError("S3 timed out")
        return original(self, bucket, key, version_id)

    monkeypatch.setattr(S3ObjectSource, "read_image_info", flaky)
    event = {"Records": [world.sqs_record(m) for m in messages]}
    # When the batch is handled
    response = handler.handle(event, FakeContext())
    # Then only that record is reported failed
    assert response["batchItemFailures"] == [{"itemIdentifier": event["Records"][1]["messageId"]}]
    # And once S3 answers again, SQS's redelivery of that same message goes in next to its neighbours
    monkeypatch.setattr(S3ObjectSource, "read_image_info", original)
    assert world.invoke([messages[1]])["batchItemFailures"] == []
    report = world.drain()
    names = sorted(e["source-ref"].rsplit("/", 1)[1] for e in world.dataset_entries("digits", "TRAIN"))
    assert names == ["a.png", "c.png", "flaky.png"] and report.failures == 0


@pytest.mark.parametrize("content_error_fraction", [0.2, 0.0])
def test_a_line_the_service_will_not_take_among_ten_costs_only_itself(
    monkeypatch: pytest.MonkeyPatch, content_error_fraction: float
) -> None:
    """Whether the service removes a bad line and applies the rest (the Guide's documented 20%), or
    fails the whole update for it (the share for updates is not documented), the app ends with the
    nine good entries and one rejection carrying the service's reason."""
    from lambdas.ingestion.lines import Line
    from lambdas.ingestion.staging import StagingStore

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(), running_engine(time_scale=0.001, content_error_fraction=content_error_fraction):
        world = OfflineIngestion()
        world.activate(monkeypatch)
        # Given ten staged lines, one of them without source-ref in its JSON (a line our checks
        # would never let through, staged directly to stand for any line the service refuses)
        lines = [
            Line(
                f"s3://{world.bucket}/digits/images/{i}.png",
                manifest_line(world, f"digits/images/{i}.png", "a"),
            )
            for i in range(9)
        ]
        bad = f"s3://{world.bucket}/digits/images/bad.png"
        lines.insert(4, Line(bad, json.dumps({"cls": 0, "cls-metadata": {"class-name": "a"}})))
        StagingStore(world.state_table).stage("digits", "TRAIN", lines, "2026-01-01T00:00:00.000Z#01")
        # When a flush is requested and delivered
        flush = {"type": handler.FLUSH_REQUEST, "project": "digits", "dataset_type": "TRAIN"}
        world.invoke([{"Body": json.dumps(flush)}])
        world.drain()
        # Then nine entries, and one rejection for the bad line with its key and the service's reason
        assert len(world.dataset_entries("digits", "TRAIN")) == 9
        rejected = [r for e in events_of(world, EVENT_ENTRIES_REJECTED) for r in e["detail"]["rejections"]]
        assert [(r["key"], r["location"]) for r in rejected] == [("digits/images/bad.png", bad)]
        expected = "terminal content error" if content_error_fraction else "ERROR_TOO_MANY_RECORDS_IN_ERROR"
        assert expected in rejected[0]["reason"]
        applied = [e["detail"] for e in events_of(world, EVENT_ENTRIES_APPLIED)]
        assert (
            sum(a["entries_added"] for a in applied) == 9 and sum(a["entries_updated"] for a in applied) == 0
        )
    aws.reset_clients()
    config.clear_cache()
    handler.reset_runtime()


@pytest.mark.parametrize("throttling_status", [500, 400])
def test_throttling_beyond_the_client_retries_is_waited_out(
    monkeypatch: pytest.MonkeyPatch, throttling_status: int
) -> None:
    """The API reference gives HTTP 500 for ThrottlingException, the Guide 400 as well: either way
    the lines wait, no record fails and nothing is rejected."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(), running_engine(time_scale=0.001, throttling_status=throttling_status) as engine:
        world = OfflineIngestion()
        world.activate(monkeypatch)
        world.invoke([world.upload("digits/train/0/first.png", png_bytes())])
        world.drain()
        # Given more throttles of UpdateDatasetEntries than boto3 retries in one call (5 attempts)
        engine.faults.throttle("UpdateDatasetEntries", count=6)
        world.invoke([world.upload(f"digits/train/1/img-{i}.png", png_bytes()) for i in range(5)])
        # When every flush request is delivered (drain fails on any failed record)
        world.drain(max_rounds=20)
        # Then the throttles were used up and every image is an entry, none rejected
        assert engine.faults.list() == []
        assert len(world.dataset_entries("digits", "TRAIN")) == 6
        assert events_of(world, EVENT_ENTRIES_REJECTED) == []
    aws.reset_clients()
    config.clear_cache()
    handler.reset_runtime()
