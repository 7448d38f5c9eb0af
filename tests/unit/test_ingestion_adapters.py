"""Ingestion for CONTENT_MODERATION projects: label folders and adapter manifests become lines of
the project's manifests in S3 (moto + the local engine, the real handler)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from autopilot.engine.testing import running_engine
from bench.ingestion_burst import png_bytes
from lambdas.common import aws, config
from lambdas.common.settings import ProjectSettings
from lambdas.ingestion import handler
from lambdas.ingestion.adapter_lines import check_moderation_label, parse_adapter_line
from lambdas.ingestion.adapter_manifests import AdapterManifests, merge_lines
from lambdas.ingestion.lines import Line
from lambdas.ingestion.validation import Rejected
from tests.unit.ingestion_world import OfflineIngestion

pytestmark = pytest.mark.xdist_group("ingestion-engine")

PROJECTS = {
    "moderation": ProjectSettings(feature="CONTENT_MODERATION", moderation_safe_folder="clean"),
    "digits": ProjectSettings(),
}
TRAIN_MANIFEST = "moderation/adapter-manifests/train.manifest"
TEST_MANIFEST = "moderation/adapter-manifests/test.manifest"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[OfflineIngestion]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(), running_engine(time_scale=0.001) as engine:
        offline = OfflineIngestion(projects=PROJECTS)
        offline.engine = engine  # type: ignore[attr-defined]
        offline.activate(monkeypatch)
        yield offline
    aws.reset_clients()
    config.clear_cache()
    handler.reset_runtime()


def manifest(world: OfflineIngestion, key: str) -> dict[str, Any]:
    """source-ref (key part) -> the labels of the manifest object, and its entry-count metadata."""
    response = world.s3.get_object(Bucket=world.bucket, Key=key)
    lines = [json.loads(line) for line in response["Body"].read().decode().splitlines()]
    return {
        "labels": {
            line["source-ref"].split("/", 3)[3]: [
                label["Name"] for label in line["content-moderation-groundtruth"]["ModerationLabels"]
            ]
            for line in lines
        },
        "entries": response["Metadata"]["entries"],
        "lines": len(lines),
    }


def rejections(world: OfflineIngestion) -> list[dict[str, Any]]:
    return [r for e in world.events() if e["type"] == "entries.rejected" for r in e["detail"]["rejections"]]


def test_label_folders_and_the_safe_folder_become_adapter_lines(world: OfflineIngestion) -> None:
    world.invoke(
        [
            world.upload("moderation/train/Smoking/a.png", png_bytes()),
            world.upload("moderation/train/clean/b.png", png_bytes()),
            world.upload("moderation/test/Alcoholic Beverages/c.png", png_bytes()),
        ]
    )
    world.drain()
    assert manifest(world, TRAIN_MANIFEST) == {
        "labels": {"moderation/train/Smoking/a.png": ["Smoking"], "moderation/train/clean/b.png": []},
        "entries": "2",
        "lines": 2,
    }
    assert manifest(world, TEST_MANIFEST)["labels"] == {
        "moderation/test/Alcoholic Beverages/c.png": ["Alcoholic Beverages"]
    }
    applied = [e["detail"] for e in world.events() if e["type"] == "entries.applied"]
    assert {d["dataset_type"] for d in applied} == {"TEST", "TRAIN"}
    assert all(
        d["manifest"].startswith(f"s3://{world.bucket}/moderation/adapter-manifests/") for d in applied
    )
    # The project was created for adapters, without datasets (CreateProjectVersion with assets).
    (project,) = aws.client("rekognition").describe_projects(
        ProjectNames=["moderation"], Features=["CONTENT_MODERATION"]
    )["ProjectDescriptions"]
    assert project.get("Datasets", []) == [] and project["AutoUpdate"] == "ENABLED"


def test_a_label_outside_the_taxonomy_is_rejected_with_the_valid_names(world: OfflineIngestion) -> None:
    world.invoke([world.upload("moderation/train/unsafe/a.png", png_bytes())])
    world.drain()
    # (S3 notifies the upload too: the same rejection may be published for each delivery)
    found = rejections(world)
    assert {r["key"] for r in found} == {"moderation/train/unsafe/a.png"}
    rejection = found[0]
    assert "'unsafe' is not a moderation label" in rejection["reason"]
    assert "Smoking" in rejection["reason"] and "Explicit Nudity" in rejection["reason"]
    assert "'clean'" in rejection["reason"]  # the configured safe folder is named too
    with pytest.raises(world.s3.exceptions.NoSuchKey):
        world.s3.get_object(Bucket=world.bucket, Key=TRAIN_MANIFEST)


def test_adapter_manifests_are_merged_and_a_newer_line_replaces_the_older(world: OfflineIngestion) -> None:
    image = f"s3://{world.bucket}/moderation/images/x.png"
    world.invoke([world.upload("moderation/train/Smoking/a.png", png_bytes())])
    world.drain()

    def line(ref: str, *names: str) -> str:
        labels = [{"Name": name} for name in names]
        return json.dumps({"source-ref": ref, "content-moderation-groundtruth": {"ModerationLabels": labels}})

    first = "\n".join([line(image, "Weapons"), line(image.replace("x.png", "y.png")), '{"source-ref": 1}'])
    world.invoke([world.upload("moderation/manifests/train/one.manifest", first.encode())])
    world.drain()
    relabel = line(image, "Drinking")
    world.invoke([world.upload("moderation/manifests/train/two.manifest", relabel.encode())])
    world.drain()
    found = manifest(world, TRAIN_MANIFEST)
    assert found["labels"] == {
        "moderation/train/Smoking/a.png": ["Smoking"],
        "moderation/images/x.png": ["Drinking"],
        "moderation/images/y.png": [],
    }
    assert found["entries"] == "3"
    assert {(r["key"], r.get("line")) for r in rejections(world)} == {
        ("moderation/manifests/train/one.manifest", 3)
    }
    # Every write is a new version of the object (the bucket is versioned).
    versions = world.s3.list_object_versions(Bucket=world.bucket, Prefix=TRAIN_MANIFEST)["Versions"]
    writes = [e["detail"] for e in world.events() if e["type"] == "entries.applied"]
    assert len(versions) == sum(d["manifest_writes"] for d in writes) >= 3
    assert {d["manifest_version"] for d in writes} <= {v["VersionId"] for v in versions}


def test_a_late_redelivery_of_an_older_upload_does_not_undo_a_newer_line(world: OfflineIngestion) -> None:
    old = world.upload("moderation/train/Smoking/a.png", png_bytes())
    world.invoke([old])
    world.drain()
    ref = f"s3://{world.bucket}/moderation/train/Smoking/a.png"
    newer = json.dumps(
        {"source-ref": ref, "content-moderation-groundtruth": {"ModerationLabels": [{"Name": "Pills"}]}}
    )
    world.invoke([world.upload("moderation/manifests/train/fix.manifest", newer.encode())])
    world.drain()
    world.invoke([old])  # SQS delivers the first notification again
    world.drain()
    assert manifest(world, TRAIN_MANIFEST)["labels"] == {"moderation/train/Smoking/a.png": ["Pills"]}


def test_a_concurrent_write_is_merged_not_overwritten() -> None:
    with mock_aws():
        s3 = aws.client("s3")
        s3.create_bucket(Bucket="data-bucket")
        s3.put_bucket_versioning(Bucket="data-bucket", VersioningConfiguration={"Status": "Enabled"})
        store = AdapterManifests("data-bucket", client=s3)
        store.apply(
            "p/adapter-manifests/train.manifest",
            [Line("s3://data-bucket/a", '{"source-ref":"s3://data-bucket/a"}')],
        )
        real_read = store.read
        calls = {"n": 0}

        def read_then_someone_writes(key: str) -> Any:
            found = real_read(key)
            calls["n"] += 1
            if calls["n"] == 1:  # another writer lands between our read and our write
                store_two = AdapterManifests("data-bucket", client=s3)
                store_two.apply(key, [Line("s3://data-bucket/b", '{"source-ref":"s3://data-bucket/b"}')])
            return found

        store.read = read_then_someone_writes  # type: ignore[method-assign]
        written = store.apply(
            "p/adapter-manifests/train.manifest",
            [Line("s3://data-bucket/c", '{"source-ref":"s3://data-bucket/c"}')],
        )
        body = s3.get_object(Bucket="data-bucket", Key="p/adapter-manifests/train.manifest")["Body"].read()
        assert [json.loads(x)["source-ref"][-1] for x in body.decode().splitlines()] == ["a", "b", "c"]
        assert written.entries == 3 and calls["n"] == 2
    aws.reset_clients()


def test_labels_are_checked_against_the_moderation_taxonomy() -> None:
    assert check_moderation_label("Explicit Nudity", "safe") == "Explicit Nudity"
    assert check_moderation_label("safe", "safe") == "safe"
    with pytest.raises(Rejected, match="'Nudity' is not a moderation label; valid names: Explicit, "):
        check_moderation_label("Nudity", "safe")
    entry = parse_adapter_line(
        '{"source-ref": "s3://b/k.png", "content-moderation-groundtruth": {"ModerationLabels": []}}', "b"
    )
    assert (
        entry.line == '{"source-ref":"s3://b/k.png","content-moderation-groundtruth":{"ModerationLabels":[]}}'
    )
    with pytest.raises(Rejected, match="'Cats' is not a moderation label"):
        parse_adapter_line(
            '{"source-ref": "s3://b/k.png", '
            '"content-moderation-groundtruth": {"ModerationLabels": [{"Name": "Cats"}]}}',
            "b",
        )
    with pytest.raises(Rejected, match="ModerationLabels"):
        parse_adapter_line('{"source-ref": "s3://b/k.png", "label": 1}', "b")


def test_merge_keeps_the_place_of_a_replaced_line() -> None:
    current = [Line("a", "1"), Line("b", "2")]
    merged, added, updated = merge_lines(current, [Line("b", "3"), Line("c", "4")])
    assert [(line.source_ref, line.text) for line in merged] == [("a", "1"), ("b", "3"), ("c", "4")]
    assert (added, updated) == (1, 1)
