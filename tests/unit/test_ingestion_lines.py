"""Ground Truth line building, manifest reading and 5 MB packing."""

from __future__ import annotations

import json
import math

import pytest

from lambdas.common.constants import GROUND_TRUTH_LABEL_ATTRIBUTE, UPDATE_ENTRIES_MAX_BYTES
from lambdas.ingestion import chunking
from lambdas.ingestion.chunking import LineTooLarge, encode, lower_bound, pack, payload_bytes
from lambdas.ingestion.lines import Line, image_line, read_manifest

BUCKET = "data-bucket"


def test_image_line_is_an_image_level_ground_truth_line() -> None:
    # Given an image uploaded under its label folder / When its line is built
    line = image_line(f"s3://{BUCKET}/digits/train/café/猫.png", "café", "2026-11-21T18:00:01.123Z")
    body = json.loads(line.text)
    # Then it is a valid image-classification line whose label is the folder name
    assert body["source-ref"] == f"s3://{BUCKET}/digits/train/café/猫.png"
    metadata = body[f"{GROUND_TRUTH_LABEL_ATTRIBUTE}-metadata"]
    assert body[GROUND_TRUTH_LABEL_ATTRIBUTE] == 1
    assert metadata["class-name"] == "café"
    assert metadata["type"] == "groundtruth/image-classification"
    assert metadata["creation-date"] == "2026-11-21T18:00:01"
    assert line.size == len(line.text.encode("utf-8")) + 1


def test_same_event_gives_byte_identical_line() -> None:
    first = image_line("s3://b/k.png", "x", "2026-11-21T18:00:01.123Z")
    again = image_line("s3://b/k.png", "x", "2026-11-21T18:00:01.123Z")
    assert first == again


def test_manifest_keeps_valid_lines_and_reports_bad_ones_by_number() -> None:
    good = json.dumps(
        {
            "source-ref": f"s3://{BUCKET}/a.png",
            "l": 0,
            "l-metadata": {"class-name": "a", "type": "groundtruth/image-classification"},
        }
    )
    content = read_manifest(
        [good.encode(), b"", b"{broken", b"\xff\xfe", good.replace("a.png", "b.png")], BUCKET
    )
    assert [line.source_ref for line in content.lines] == [f"s3://{BUCKET}/a.png", f"s3://{BUCKET}/b.png"]
    assert [(r.line_number, r.reason.split(" ")[0]) for r in content.rejections] == [(3, "not"), (4, "not")]
    assert content.blank_lines == 1


def test_manifest_repeating_a_source_ref_keeps_the_later_line() -> None:
    def line(name: str) -> str:
        return json.dumps(
            {
                "source-ref": f"s3://{BUCKET}/a.png",
                "l": 0,
                "l-metadata": {"class-name": name, "type": "groundtruth/image-classification"},
            }
        )

    content = read_manifest([line("old"), line("new")], BUCKET)
    assert len(content.lines) == 1
    assert '"new"' in content.lines[0].text


def lines_of(sizes: list[int]) -> list[Line]:
    return [Line(f"s3://b/{i}", "x" * size) for i, size in enumerate(sizes)]


def test_pack_never_exceeds_the_limit_and_keeps_every_line_once() -> None:
    lines = lines_of([300 + (i * 37) % 900 for i in range(5000)])
    chunks = list(pack(lines, limit=64 * 1024))
    assert all(len(encode(chunk)) <= 64 * 1024 for chunk in chunks)
    assert [line for chunk in chunks for line in chunk] == lines
    # within one call of the lower bound
    assert len(chunks) <= lower_bound(lines, 64 * 1024) + 1


def test_pack_fills_a_chunk_exactly_to_the_limit() -> None:
    # Given lines whose joined payload is exactly the limit (newlines included)
    lines = lines_of([99, 99, 99])  # 3 * 99 + 2 separators = 299
    assert [len(c) for c in pack(lines, limit=299)] == [3]
    assert [len(c) for c in pack(lines, limit=298)] == [2, 1]


def test_real_limit_packs_ten_thousand_lines_at_the_lower_bound() -> None:
    lines = [
        image_line(
            f"s3://{BUCKET}/digits/train/{i % 10}/img-{i:05d}.png", str(i % 10), "2026-01-01T00:00:00Z"
        )
        for i in range(10_000)
    ]
    chunks = list(pack(lines))
    assert len(chunks) == math.ceil(payload_bytes(lines) / UPDATE_ENTRIES_MAX_BYTES)
    assert all(len(encode(c)) <= chunking.UPDATE_ENTRIES_MAX_BYTES for c in chunks)


def test_line_larger_than_the_limit_is_refused() -> None:
    with pytest.raises(LineTooLarge):
        list(pack(lines_of([11]), limit=10))


def test_empty_input_needs_no_call() -> None:
    assert list(pack([])) == [] and lower_bound([]) == 0
