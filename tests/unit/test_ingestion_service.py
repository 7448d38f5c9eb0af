"""ingest_object: one uploaded object -> staged lines or rejections, with fakes for S3 and staging."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from lambdas.common.settings import AppSettings, ProjectSettings
from lambdas.ingestion import ingest
from lambdas.ingestion.ingest import IngestResult, S3ObjectEvent, ingest_object, is_manifest_key
from lambdas.ingestion.lines import Line
from lambdas.ingestion.validation import ImageInfo, Rejected

SETTINGS = AppSettings(projects={"digits": ProjectSettings()})
BUCKET = "data"


class FakeSource:
    def __init__(self, info: ImageInfo | Rejected | None = None, lines: list[bytes] | None = None) -> None:
        self.info = info or ImageInfo("PNG", 100, 100)
        self.lines = lines or []
        self.reads = 0

    def read_image_info(self, bucket: str, key: str, version_id: str | None) -> ImageInfo:
        self.reads += 1
        if isinstance(self.info, Rejected):
            raise self.info
        return self.info

    def iter_lines(self, bucket: str, key: str, version_id: str | None) -> Iterator[bytes]:
        yield from self.lines


class FakeStore:
    def __init__(self, task: str | None = None) -> None:
        self.staged: list[tuple[str, str, list[Line], str]] = []
        self.task = task

    def project_task(self, project: str, proposed: str) -> str:
        if self.task is None:
            self.task = proposed
        return self.task

    def stage(self, project: str, dataset_type: str, lines: list[Line], seq: str) -> int:
        self.staged.append((project, dataset_type, list(lines), seq))
        return len(lines)


def event(key: str, size: int = 1000) -> S3ObjectEvent:
    return S3ObjectEvent(BUCKET, key, size, "2026-11-21T18:00:00.000Z", "0A", "v1")


def run(key: str, source: FakeSource, store: FakeStore | None = None, size: int = 1000) -> IngestResult:
    return ingest_object(
        event(key, size), settings=SETTINGS, data_bucket=BUCKET, source=source, store=store or FakeStore()
    )


def test_valid_image_yields_one_pending_line_for_its_dataset() -> None:
    result = run("digits/train/7/a.png", FakeSource())
    assert (result.project, result.dataset_type, result.rejections) == ("digits", "TRAIN", [])
    ((line, seq),) = result.pending
    assert line.source_ref == f"s3://{BUCKET}/digits/train/7/a.png" and seq.startswith(
        "2026-11-21T18:00:00.000Z#0A"
    )


def test_image_over_the_size_limit_is_rejected_without_reading_more() -> None:
    result = run("digits/train/7/a.png", FakeSource(), size=16 * 1024 * 1024)
    assert result.pending == [] and "at most 15 MB" in result.rejections[0].reason


def test_unreadable_image_is_rejected_with_its_key() -> None:
    result = run("digits/test/7/a.png", FakeSource(Rejected("not a PNG or JPEG")))
    assert [(r.key, r.reason) for r in result.rejections] == [("digits/test/7/a.png", "not a PNG or JPEG")]


def test_unknown_project_is_rejected_and_attributed_to_its_folder() -> None:
    source = FakeSource()
    result = run("cats/train/x/a.png", source)
    assert result.project == "cats" and "cdk.json" in result.rejections[0].reason and source.reads == 0


def test_object_in_another_bucket_is_ignored() -> None:
    result = ingest_object(
        S3ObjectEvent("other", "digits/train/7/a.png", 1, "t"),
        settings=SETTINGS,
        data_bucket=BUCKET,
        source=FakeSource(),
        store=FakeStore(),  # type: ignore[arg-type]
    )
    assert result.ignored and not result.pending and not result.rejections


def test_manifest_is_staged_block_by_block_with_line_numbers_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "MANIFEST_BLOCK_LINES", 2)
    good = [
        json.dumps(
            {
                "source-ref": f"s3://{BUCKET}/img/{i}.png",
                "a": 0,
                "a-metadata": {"class-name": "x", "type": "groundtruth/image-classification"},
            }
        ).encode()
        for i in range(4)
    ]
    store = FakeStore()
    result = run(
        "digits/manifests/test/m.manifest",
        FakeSource(lines=[good[0], b"{bad", good[1], good[2], b"[]", good[3]]),
        store,
    )
    assert result.staged == 4 and len(store.staged) == 3
    assert all(dataset == "TEST" for _, dataset, _, _ in store.staged)
    assert [(r.key, r.line) for r in result.rejections] == [
        ("digits/manifests/test/m.manifest", 2),
        ("digits/manifests/test/m.manifest", 5),
    ]
    assert result.to_dict()["staged"] == 4 and IngestResult.from_dict(result.to_dict()) == result


def test_manifest_rejections_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "MAX_LINE_REJECTIONS_REPORTED", 3)
    result = run("digits/manifests/train/m.manifest", FakeSource(lines=[b"{bad"] * 10))
    assert len(result.rejections) == 4 and "7 more lines were rejected" in result.rejections[-1].reason


def test_manifest_keys_are_recognised_before_validation() -> None:
    assert is_manifest_key("digits/manifests/train/a.manifest")
    assert not is_manifest_key("digits/train/manifests/a.png")


def box_line(ref: str) -> bytes:
    return json.dumps(
        {
            "source-ref": ref,
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
    ).encode()


def test_a_bounding_box_line_in_an_image_level_project_is_rejected() -> None:
    # Given a project whose first entries were image-level (a folder upload)
    store = FakeStore()
    assert run("digits/train/7/a.png", FakeSource(), store).rejections == []
    # When a manifest brings a bounding-box line
    result = run(
        "digits/manifests/train/m.manifest", FakeSource(lines=[box_line(f"s3://{BUCKET}/b.jpg")]), store
    )
    # Then that line is rejected with the reason, and nothing is staged
    (rejection,) = result.rejections
    assert rejection.line == 1 and "bounding boxes" in rejection.reason and "image-level" in rejection.reason
    assert store.staged == []


def test_an_image_folder_upload_to_a_bounding_box_project_is_rejected() -> None:
    store = FakeStore()
    run("digits/manifests/train/m.manifest", FakeSource(lines=[box_line(f"s3://{BUCKET}/b.jpg")]), store)
    result = run("digits/train/7/a.png", FakeSource(), store)
    assert result.pending == [] and "image-level labels" in result.rejections[0].reason


def test_the_configured_task_type_decides_over_the_first_entries() -> None:
    settings = AppSettings(projects={"digits": ProjectSettings(task_type="OBJECT_LOCALIZATION")})
    store = FakeStore()
    result = ingest_object(
        event("digits/train/7/a.png"), settings=settings, data_bucket=BUCKET, source=FakeSource(), store=store
    )  # type: ignore[arg-type]
    assert "configured" in result.rejections[0].reason and store.task is None
