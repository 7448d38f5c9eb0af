"""1,000 images and a manifest with bad lines arrive at once; notifications are duplicated and
reordered. Exactly the valid entries end up in the engine's datasets, each once."""

from __future__ import annotations

import json
import random

import pytest

from autopilot.engine.testing import running_engine
from bench.ingestion_burst import ingestion_stack, png_bytes
from lambdas.common import aws, config
from lambdas.common.constants import EVENT_ENTRIES_APPLIED, EVENT_ENTRIES_REJECTED, UPDATE_ENTRIES_MAX_BYTES
from lambdas.common.settings import ProjectSettings
from lambdas.ingestion import handler

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ingestion-engine")]


def manifest_lines(bucket: str) -> tuple[list[str], set[str], int]:
    """30 valid image-level lines, 10 bounding-box lines (rejected: the project trains on image-level
    labels) and 8 bad ones. Returns lines, valid refs, rejected count."""
    lines, valid = [], set()
    for i in range(30):
        ref = f"s3://{bucket}/digits/shelf/img-{i}.png"
        lines.append(
            json.dumps(
                {
                    "source-ref": ref,
                    "digit": 0,
                    "digit-metadata": {"class-name": str(i % 3), "type": "groundtruth/image-classification"},
                }
            )
        )
        valid.add(ref)
    for i in range(10):
        ref = f"s3://{bucket}/digits/shelf/boxes-{i}.jpg"
        lines.append(
            json.dumps(
                {
                    "source-ref": ref,
                    "bounding-box": {
                        "image_size": [{"width": 640, "height": 480, "depth": 3}],
                        "annotations": [{"class_id": 0, "left": 5 * i, "top": 5, "width": 100, "height": 80}],
                    },
                    "bounding-box-metadata": {
                        "objects": [{"confidence": 1}],
                        "class-map": {"0": "Echo"},
                        "type": "groundtruth/object-detection",
                    },
                }
            )
        )
    bad = [
        "{oops",
        json.dumps(
            {
                "source-ref": "s3://someone-elses-bucket/x.png",
                "a": 0,
                "a-metadata": {"class-name": "x", "type": "groundtruth/image-classification"},
            }
        ),
        json.dumps({"a": 0}),
        json.dumps(
            {
                "source-ref": f"s3://{bucket}/digits/shelf/long.png",
                "a": 0,
                "a-metadata": {"class-name": "x" * 300, "type": "groundtruth/image-classification"},
            }
        ),
        json.dumps(
            {
                "source-ref": f"s3://{bucket}/digits/shelf/outside.jpg",
                "bounding-box": {
                    "image_size": [{"width": 10, "height": 10}],
                    "annotations": [{"class_id": 0, "left": 5, "top": 5, "width": 10, "height": 10}],
                },
                "bounding-box-metadata": {
                    "objects": [{}],
                    "class-map": {"0": "E"},
                    "type": "groundtruth/object-detection",
                },
            }
        ),
        json.dumps(
            {
                "source-ref": f"s3://{bucket}/digits/shelf/nomap.jpg",
                "bounding-box": {
                    "image_size": [{"width": 10, "height": 10}],
                    "annotations": [{"class_id": 3, "left": 1, "top": 1, "width": 2, "height": 2}],
                },
                "bounding-box-metadata": {
                    "objects": [{}],
                    "class-map": {"0": "E"},
                    "type": "groundtruth/object-detection",
                },
            }
        ),
        "[1, 2, 3]",
        json.dumps(
            {
                "source-ref": f"s3://{bucket}/digits/shelf/y.png",
                "a": "one",
                "a-metadata": {"class-name": "x", "type": "groundtruth/image-classification"},
            }
        ),
    ]
    for offset, line in zip((3, 9, 14, 20, 26, 31, 37, 44), bad, strict=True):
        lines.insert(offset, line)
    return lines, valid, len(bad) + 10


def test_thousand_uploads_and_a_manifest_become_exactly_the_valid_entries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(11)
    projects = {"digits": ProjectSettings(task_type="IMAGE_LEVEL_LABELS")}
    with running_engine(time_scale=0.001) as engine, ingestion_stack(engine.url, projects) as world:
        # Given 1,000 images (900 train, 100 test; 20 of them invalid) and a manifest
        good, bad_images = png_bytes(), png_bytes(20, 20)
        messages, expected = [], {"TRAIN": set(), "TEST": set()}
        for i in range(1000):
            folder, dataset = ("test", "TEST") if i % 10 == 0 else ("train", "TRAIN")
            key = f"digits/{folder}/{i % 7}/photo {i:04d}.png"
            invalid = i % 50 == 1
            messages.append(world.upload(key, bad_images if invalid else good))
            if not invalid:
                expected[dataset].add(f"s3://{world.bucket}/{key}")
        lines, manifest_valid, manifest_bad = manifest_lines(world.bucket)
        messages.append(world.upload("digits/manifests/train/shelf.manifest", "\n".join(lines).encode()))
        expected["TRAIN"] |= manifest_valid

        # When every notification is delivered, a third of them twice, all in random order
        deliveries = messages + rng.sample(messages, len(messages) // 3)
        rng.shuffle(deliveries)
        for start in range(0, len(deliveries), 100):
            response = world.invoke(deliveries[start : start + 100])
            assert response["batchItemFailures"] == []
        report = world.drain()

        # Then each dataset holds exactly the valid entries, each once
        for dataset, refs in expected.items():
            found = [e["source-ref"] for e in world.dataset_entries("digits", dataset)]
            assert len(found) == len(set(found)), f"duplicates in {dataset}"
            assert set(found) == refs, (
                f"{dataset}: missing {len(refs - set(found))}, extra {len(set(found) - refs)}"
            )
        assert report.failures == 0

        # And every rejection was published once per delivery with its key, and the counts add up
        events = world.events()
        rejected = [
            r for e in events if e["type"] == EVENT_ENTRIES_REJECTED for r in e["detail"]["rejections"]
        ]
        assert {r["key"] for r in rejected if r.get("line") is None} == {
            f"digits/{'test' if i % 10 == 0 else 'train'}/{i % 7}/photo {i:04d}.png"
            for i in range(1000)
            if i % 50 == 1
        }
        manifest_rejections = {(r["key"], r["line"]) for r in rejected if r.get("line") is not None}
        assert {key for key, _ in manifest_rejections} == {"digits/manifests/train/shelf.manifest"}
        assert len(manifest_rejections) == manifest_bad
        applied = [e["detail"] for e in events if e["type"] == EVENT_ENTRIES_APPLIED]
        assert sum(a["entries_added"] for a in applied) == sum(len(v) for v in expected.values())
        # The whole burst fits one call per dataset (its lines are far below 5 MB)
        assert sum(a["update_calls"] for a in applied) == 2
        assert UPDATE_ENTRIES_MAX_BYTES > 1_000 * 400
    aws.reset_clients()
    config.clear_cache()
    handler.reset_runtime()
