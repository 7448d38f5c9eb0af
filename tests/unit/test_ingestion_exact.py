"""Exact results of key routing, dataset lines and input validation: full messages (each names the
input and what to do) and both sides of every limit. Written against the mutation run
(`make mutation`, docs/testing.md)."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from lambdas.ingestion.keys import (
    IgnoredKey,
    ImageKey,
    KeyRejected,
    ManifestKey,
    decode_key,
    parse_source_ref,
    route_key,
)
from lambdas.ingestion.lines import Line, LineRejection, image_line, read_manifest
from lambdas.ingestion.validation import (
    ImageInfo,
    NeedMoreBytes,
    Rejected,
    check_image,
    check_image_end,
    check_label,
    parse_manifest_line,
    read_image_header,
)

PROJECTS = ("digits", "cats")
BUCKET = "data"

EMPTY_LABEL_FOLDER = (
    "names the label of the image, and the label name is empty; give the image a label. Rename the folder "
    "(upload to digits/train/<label>/...) with a name of 1 to 256 characters, without tabs, line breaks or "
    "spaces at either end"
)


# --- keys -----------------------------------------------------------------------------------------
def test_decode_key_is_strict_utf8() -> None:
    assert decode_key("digits/train/seven+up/caf%C3%A9.png") == "digits/train/seven up/café.png"
    with pytest.raises(UnicodeDecodeError):
        decode_key("digits/train/7/%FF.png")


@pytest.mark.parametrize(
    ("key", "route"),
    [
        ("digits/train/", IgnoredKey("digits/train/", "folder placeholder")),
        ("digits/train/7/a.png", ImageKey("digits", "TRAIN", "7", "digits/train/7/a.png")),
        ("cats/test/tabby/x/y.jpg", ImageKey("cats", "TEST", "tabby", "cats/test/tabby/x/y.jpg")),
        (
            "digits/manifests/test/a.manifest",
            ManifestKey("digits", "TEST", "digits/manifests/test/a.manifest"),
        ),
    ],
)
def test_routes(key: str, route: Any) -> None:
    assert route_key(key, PROJECTS) == route


@pytest.mark.parametrize(
    ("key", "projects", "message"),
    [
        (
            "dogs/train/a/b.png",
            PROJECTS,
            "dogs/train/a/b.png: project 'dogs' is not configured (configured: cats, digits); add it under "
            "context 'projects' in cdk.json and deploy, or move the file under a configured project",
        ),
        (
            "dogs/train/a/b.png",
            (),
            "dogs/train/a/b.png: project 'dogs' is not configured (configured: none); add it under "
            "context 'projects' in cdk.json and deploy, or move the file under a configured project",
        ),
        (
            "digits",
            PROJECTS,
            "digits: expected digits/train/<label>/<file>, digits/test/<label>/<file> or "
            "digits/manifests/(train|test)/<name>.manifest",
        ),
        (
            "digits/other/a.png",
            PROJECTS,
            "digits/other/a.png: expected digits/train/<label>/<file>, digits/test/<label>/<file> or "
            "digits/manifests/(train|test)/<name>.manifest",
        ),
        (
            "digits/train",
            PROJECTS,
            "digits/train: images go one folder deeper, under the label: digits/train/<label>/<file>",
        ),
        (
            "digits/test/a.png",
            PROJECTS,
            "digits/test/a.png: images go one folder deeper, under the label: digits/test/<label>/<file>",
        ),
        (
            "digits/train//a.png",
            PROJECTS,
            "digits/train//a.png: " + f"the folder '' {EMPTY_LABEL_FOLDER}",
        ),
        (
            "digits/train/ /a.png",
            PROJECTS,
            "digits/train/ /a.png: " + f"the folder ' ' {EMPTY_LABEL_FOLDER}",
        ),
        (
            "digits/manifests/a.manifest",
            PROJECTS,
            "digits/manifests/a.manifest: manifests go under digits/manifests/train/ or "
            "digits/manifests/test/ to say which dataset they extend",
        ),
        (
            "digits/manifests/other/a.manifest",
            PROJECTS,
            "digits/manifests/other/a.manifest: manifests go under digits/manifests/train/ or "
            "digits/manifests/test/ to say which dataset they extend",
        ),
        (
            "digits/manifests/train/a.json",
            PROJECTS,
            "digits/manifests/train/a.json: a manifest's name must end with .manifest; rename it",
        ),
    ],
)
def test_rejected_keys_say_why_and_what_to_do(key: str, projects: tuple[str, ...], message: str) -> None:
    with pytest.raises(KeyRejected) as info:
        route_key(key, projects)
    assert str(info.value) == message


def test_parse_source_ref() -> None:
    assert parse_source_ref("s3://b/k/x.png") == ("b", "k/x.png")
    for ref, message in (
        ("http://b/k", "source-ref 'http://b/k' must start with s3://"),
        ("s3://b", "source-ref 's3://b' must be s3://<bucket>/<key>"),
        ("s3:///k", "source-ref 's3:///k' must be s3://<bucket>/<key>"),
    ):
        with pytest.raises(ValueError) as info:
            parse_source_ref(ref)
        assert str(info.value) == message


# --- lines ----------------------------------------------------------------------------------------
def test_image_line_is_compact_utf8_json() -> None:
    line = image_line("s3://b/digits/train/7/é.png", "seven é", "2026-11-21T18:00:00.123Z")
    assert line == Line(
        "s3://b/digits/train/7/é.png",
        '{"source-ref":"s3://b/digits/train/7/é.png","autopilot-label":1,"autopilot-label-metadata":'
        '{"confidence":1,"class-name":"seven é","human-annotated":"yes","creation-date":'
        '"2026-11-21T18:00:00","type":"groundtruth/image-classification","job-name":"custom-labels-autopilot"}}',
    )


def test_read_manifest_reports_bad_lines_by_number_and_keeps_the_rest() -> None:
    good = json.dumps(
        {
            "source-ref": f"s3://{BUCKET}/a.png",
            "c": 0,
            "c-metadata": {"class-name": "x", "type": "groundtruth/image-classification"},
        }
    )
    content = read_manifest(
        ["\ufeff" + good, b"\xff\xfe", "", "  ", "[1]", good.encode(), "X"], BUCKET, first_line=10
    )
    assert [entry.source_ref for entry in content.entries] == [f"s3://{BUCKET}/a.png"] * 2
    assert content.rejections == [
        LineRejection(11, "not UTF-8 text; save the manifest as UTF-8"),
        LineRejection(14, "a manifest line must be one JSON object; fix the line"),
        LineRejection(16, "not valid JSON (Expecting value at column 1); fix the line"),
    ]
    assert content.blank_lines == 2
    assert len(content.lines) == 1
    assert [number for number, _ in content.numbered] == [10, 15]


# --- image headers --------------------------------------------------------------------------------
PNG = b"\x89PNG\r\n\x1a\n"


def png_header(width: int, height: int) -> bytes:
    return PNG + b"\x00\x00\x00\rIHDR" + struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00"


def jpeg(*segments: bytes) -> bytes:
    return b"\xff\xd8" + b"".join(segments)


def sof(width: int, height: int, marker: int = 0xC0) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">HBHH", 11, 8, height, width) + b"\x03\x01\x11\x00"


APP0 = b"\xff\xe0" + struct.pack(">H", 6) + b"JFIF"


def test_png_and_jpeg_dimensions() -> None:
    assert read_image_header(png_header(640, 480)) == ImageInfo("PNG", 640, 480)
    assert read_image_header(jpeg(APP0, sof(800, 600))) == ImageInfo("JPEG", 800, 600)
    assert read_image_header(jpeg(b"\xff\xff\xff", APP0[1:], sof(3, 2, 0xC2))) == ImageInfo("JPEG", 3, 2)
    assert read_image_header(jpeg(b"\xff\x01", b"\xff\xd0", sof(9, 7, 0xCF))) == ImageInfo("JPEG", 9, 7)


@pytest.mark.parametrize(
    ("data", "needed"),
    [
        (b"", 8),
        (b"\x89P", 8),
        (b"\xff", 8),
        (PNG + b"\x00" * 15, 24),
        (b"\xff\xd8", 4),
        (b"\xff\xd8\xff\xff", 6),
        (b"\xff\xd8\xff\xe0\x00", 6),
        (jpeg(APP0), 12),
        (jpeg(sof(8, 8))[:10], 11),
    ],
)
def test_short_headers_ask_for_more_bytes(data: bytes, needed: int) -> None:
    with pytest.raises(NeedMoreBytes) as info:
        read_image_header(data)
    assert info.value.needed == needed
    assert info.value.args == (needed,)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"GIF89a....",
            "the file is not a PNG or JPEG image (checked by its content, not its name); convert it to "
            "PNG or JPEG and upload it again",
        ),
        (
            b"\x89PNX",
            "the file is not a PNG or JPEG image (checked by its content, not its name); "
            "convert it to PNG or JPEG and upload it again",
        ),
        (
            PNG + b"\x00\x00\x00\rIHDX" + b"\x00" * 12,
            "the PNG file is damaged (no IHDR header); export it again",
        ),
        (jpeg(b"\x00\x00"), "the JPEG file is damaged (bad segment marker); export it again"),
        (jpeg(b"\xff\xd9"), "the JPEG file has no frame header (dimensions); export it again"),
        (jpeg(b"\xff\xda\x00\x08"), "the JPEG file has no frame header (dimensions); export it again"),
        (jpeg(b"\xff\xe1\x00\x01"), "the JPEG file is damaged (bad segment length); export it again"),
    ],
)
def test_broken_headers_are_rejected(data: bytes, message: str) -> None:
    with pytest.raises(Rejected) as info:
        read_image_header(data)
    assert str(info.value) == message


def test_non_frame_markers_are_skipped_by_their_length() -> None:
    dht = b"\xff\xc4" + struct.pack(">H", 4) + b"\x00\x00"
    assert read_image_header(jpeg(dht, sof(5, 4))) == ImageInfo("JPEG", 5, 4)
    length_two = b"\xff\xe2\x00\x02"
    assert read_image_header(jpeg(length_two, sof(6, 4))) == ImageInfo("JPEG", 6, 4)


# --- image limits ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("info", "size", "message"),
    [
        (
            ImageInfo("PNG", 100, 100),
            15 * 1024 * 1024 + 1,
            "the image is 15.0 MB; Custom Labels accepts at most 15 MB: compress or resize it",
        ),
        (ImageInfo("PNG", 0, 100), 10, "the PNG header gives 0x100 pixels; export the image again"),
        (ImageInfo("JPEG", 100, 0), 10, "the JPEG header gives 100x0 pixels; export the image again"),
        (
            ImageInfo("PNG", 63, 100),
            10,
            "the image is 63x100 pixels; each side must be between 64 and 4096 pixels: resize it",
        ),
        (
            ImageInfo("PNG", 100, 4097),
            10,
            "the image is 100x4097 pixels; each side must be between 64 and 4096 pixels: resize it",
        ),
        (
            ImageInfo("PNG", 64 * 20 + 1, 64),
            10,
            "the image is 1281x64 pixels, an aspect ratio of 20.0:1; at most 20:1 is accepted: crop it",
        ),
    ],
)
def test_image_limits(info: ImageInfo, size: int, message: str) -> None:
    with pytest.raises(Rejected) as raised:
        check_image(info, size)
    assert str(raised.value) == message


def test_images_at_the_limits_are_accepted() -> None:
    check_image(ImageInfo("PNG", 64, 64), 15 * 1024 * 1024)
    check_image(ImageInfo("PNG", 4096, 4096), 1)
    check_image(ImageInfo("PNG", 64 * 20, 64), 1)


# --- labels ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "the label name is empty; give the image a label"),
        ("  ", "the label name is empty; give the image a label"),
        (
            "x" * 257,
            f"the label name {'x' * 40!r}... has 257 characters; at most 256 are allowed: shorten it",
        ),
        (" cat", "the label name ' cat' starts or ends with a space; remove it"),
        ("cat\u0007", "the label name 'cat\\x07' contains control characters; remove them"),
    ],
)
def test_label_names(name: str, message: str) -> None:
    with pytest.raises(Rejected) as info:
        check_label(name)
    assert str(info.value) == message


def test_label_names_accepted() -> None:
    assert check_label("x" * 256) == "x" * 256
    assert check_label("seven up é") == "seven up é"


# --- manifest lines -------------------------------------------------------------------------------
def boxes_line(**changes: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "source-ref": f"s3://{BUCKET}/img/a.jpg",
        "bb": {
            "image_size": [{"width": 100, "height": 50, "depth": 3}],
            "annotations": [{"class_id": 0, "left": 10, "top": 5, "width": 90, "height": 45}],
        },
        "bb-metadata": {
            "type": "groundtruth/object-detection",
            "class-map": {"0": "car"},
            "objects": [{"confidence": 1}],
        },
    }
    line.update(changes)
    return line


def test_a_box_to_the_image_edge_is_accepted_and_counted() -> None:
    entry = parse_manifest_line(json.dumps(boxes_line(), ensure_ascii=False), BUCKET)
    assert (entry.source_ref, entry.labels, entry.boxes) == (f"s3://{BUCKET}/img/a.jpg", ("car",), 1)
    assert entry.line == json.dumps(boxes_line(), separators=(",", ":"))


def test_labels_are_distinct_in_order_and_both_kinds_count() -> None:
    line = boxes_line(
        cls=3, **{"cls-metadata": {"type": "groundtruth/image-classification", "class-name": "road"}}
    )
    line["bb"]["annotations"].append({"class_id": 0, "left": 0, "top": 0, "width": 1, "height": 1})
    line["bb-metadata"]["objects"].append({})
    entry = parse_manifest_line(json.dumps(line), BUCKET)
    assert (entry.labels, entry.boxes) == (("car", "road"), 2)


def bad(path: str, value: Any) -> str:
    line = boxes_line()
    target: Any = line
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if value is KeyError:
        del target[int(last) if isinstance(target, list) else last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return json.dumps(line)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON (Expecting property name enclosed in double quotes at column 2); fix the line"),
        ("[]", "a manifest line must be one JSON object; fix the line"),
        ('{"a": 1}', 'the line has no "source-ref"; add "source-ref": "s3://<bucket>/<key>"'),
        ('{"source-ref": ""}', 'the line has no "source-ref"; add "source-ref": "s3://<bucket>/<key>"'),
        ('{"source-ref": "/a.png"}', "source-ref '/a.png' must be an s3:// location in bucket data"),
        (
            '{"source-ref": "s3://other/a.png"}',
            "source-ref 's3://other/a.png' is in bucket 'other'; all images of a dataset must be in the "
            "data bucket 'data': copy the image there and point the line at it",
        ),
        (
            '{"source-ref": "s3://data/"}',
            "source-ref 's3://data/' names no object; point it at an image file",
        ),
        (
            '{"source-ref": "s3://data/x/"}',
            "source-ref 's3://data/x/' names no object; point it at an image file",
        ),
        (bad("bb-metadata", []), '"bb-metadata" must be a JSON object; fix the line'),
        (
            bad("bb-metadata.type", "x"),
            "\"bb-metadata\" has type 'x'; use 'groundtruth/image-classification' or "
            "'groundtruth/object-detection'",
        ),
        (bad("bb", []), '"bb" must be an object with image_size and annotations; fix the line'),
        (
            bad("bb.image_size", []),
            '"bb": "image_size" must be a list with one {"width", "height", "depth"} object',
        ),
        (
            bad("bb.image_size.0", 5),
            '"bb": "image_size" must be a list with one {"width", "height", "depth"} object',
        ),
        (
            bad("bb.image_size.0.width", 0),
            '"bb": "image_size" width and height must be positive integers (pixels)',
        ),
        (
            bad("bb.image_size.0.height", "50"),
            '"bb": "image_size" width and height must be positive integers (pixels)',
        ),
        (
            bad("bb.annotations", {}),
            '"bb": "annotations" must be a list of boxes; use [] for an image without objects',
        ),
        (
            bad("bb.annotations", [{}] * 51),
            '"bb" has 51 bounding boxes; at most 50 are allowed per image',
        ),
        (bad("bb-metadata.class-map", KeyError), '"bb-metadata" needs a "class-map" object ({"0": "label"})'),
        (
            bad("bb-metadata.objects", []),
            '"bb-metadata": "objects" must have one entry per annotation (1); fix the line',
        ),
        (
            bad("bb-metadata.objects", KeyError),
            '"bb-metadata": "objects" must have one entry per annotation (1); fix the line',
        ),
        (bad("bb.annotations.0", 3), '"bb" box 0 must be an object with class_id, left, top, width, height'),
        (
            bad("bb.annotations.0.class_id", 1),
            '"bb" box 0: class_id 1 is not in the class-map; add it or fix the id',
        ),
        (
            bad("bb.annotations.0.class_id", "0"),
            "\"bb\" box 0: class_id '0' is not in the class-map; add it or fix the id",
        ),
        (
            bad("bb.annotations.0.top", None),
            '"bb" box 0: left, top, width and height must be numbers (pixels)',
        ),
        (
            bad("bb.annotations.0.left", True),
            '"bb" box 0: left, top, width and height must be numbers (pixels)',
        ),
        (
            bad("bb.annotations.0.left", -1),
            '"bb" box 0: left and top must be >= 0 and width and height > 0 (pixels)',
        ),
        (
            bad("bb.annotations.0.top", -0.5),
            '"bb" box 0: left and top must be >= 0 and width and height > 0 (pixels)',
        ),
        (
            bad("bb.annotations.0.width", 0),
            '"bb" box 0: left and top must be >= 0 and width and height > 0 (pixels)',
        ),
        (
            bad("bb.annotations.0.height", 0),
            '"bb" box 0: left and top must be >= 0 and width and height > 0 (pixels)',
        ),
        (
            bad("bb.annotations.0.width", 90.5),
            '"bb" box 0 (10, 5, 90.5x45) extends outside the 100x50 image; fix the coordinates (pixels, '
            "origin top-left)",
        ),
        (
            bad("bb.annotations.0.height", 46),
            '"bb" box 0 (10, 5, 90x46) extends outside the 100x50 image; fix the coordinates (pixels, '
            "origin top-left)",
        ),
        (
            bad("bb-metadata.class-map", {"0": " car"}),
            "\"bb\": the label name ' car' starts or ends with a space; remove it",
        ),
        (
            json.dumps(
                {
                    "source-ref": "s3://data/a.png",
                    "c": True,
                    "c-metadata": {"type": "groundtruth/image-classification"},
                }
            ),
            '"c" must be an integer class id for an image-level label; fix the line',
        ),
        (
            json.dumps(
                {
                    "source-ref": "s3://data/a.png",
                    "c": 1,
                    "c-metadata": {"type": "groundtruth/image-classification"},
                }
            ),
            '"c-metadata" needs a "class-name" string; add the label name',
        ),
        (
            json.dumps(
                {
                    "source-ref": "s3://data/a.png",
                    "c": 1,
                    "c-metadata": {"type": "groundtruth/image-classification", "class-name": ""},
                }
            ),
            '"c": the label name is empty; give the image a label',
        ),
    ],
)
def test_bad_manifest_lines_are_rejected_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(Rejected) as info:
        parse_manifest_line(text, BUCKET)
    assert str(info.value) == message


def test_too_many_labels_and_too_long_lines() -> None:
    many = {"source-ref": "s3://data/a.png"}
    for i in range(51):
        many[f"c{i}"] = 1  # type: ignore[assignment]
        many[f"c{i}-metadata"] = {"type": "groundtruth/image-classification", "class-name": f"l{i}"}  # type: ignore[assignment]
    with pytest.raises(Rejected) as info:
        parse_manifest_line(json.dumps(many), BUCKET)
    assert str(info.value) == "the image has 51 labels; at most 50 are allowed per image"
    del many["c50"], many["c50-metadata"]
    assert len(parse_manifest_line(json.dumps(many), BUCKET).labels) == 50
    long = {"source-ref": "s3://data/a.png", "note": "x" * 100_000}
    with pytest.raises(Rejected) as info:
        parse_manifest_line(json.dumps(long), BUCKET)
    text = json.dumps(long, separators=(",", ":"))
    assert str(info.value) == f"the line has {len(text)} characters; a dataset entry holds at most 100000"
    fits = {"source-ref": "s3://data/a.png", "note": ""}
    fits["note"] = "x" * (100_000 - len(json.dumps(fits, separators=(",", ":"))))
    assert len(parse_manifest_line(json.dumps(fits), BUCKET).line) == 100_000


def test_attributes_without_metadata_are_carried_but_not_labels() -> None:
    entry = parse_manifest_line('{"source-ref": "s3://data/a.png", "note": "é"}', BUCKET)
    assert (entry.labels, entry.boxes, entry.line) == ((), 0, '{"source-ref":"s3://data/a.png","note":"é"}')


def test_header_edges() -> None:
    assert read_image_header(png_header(640, 480)[:24]) == ImageInfo("PNG", 640, 480)
    assert read_image_header(png_header(2**31, 2**32 - 1)) == ImageInfo("PNG", 2**31, 2**32 - 1)
    assert read_image_header(jpeg(sof(40000, 50000))) == ImageInfo("JPEG", 40000, 50000)
    with pytest.raises(NeedMoreBytes) as info:
        read_image_header(jpeg(b"\xff\xe1\x80\x00"))
    assert info.value.needed == 4 + 0x8000 + 2


def test_size_in_the_message_is_in_mib() -> None:
    with pytest.raises(Rejected, match=r"^the image is 100\.0 MB;"):
        check_image(ImageInfo("PNG", 100, 100), 100 * 1024 * 1024)


def classification(attribute: str, name: str) -> dict[str, Any]:
    return {
        attribute: 1,
        f"{attribute}-metadata": {"type": "groundtruth/image-classification", "class-name": name},
    }


def test_manifest_attribute_edges() -> None:
    # An attribute without metadata does not end the scan of the line
    line = {"source-ref": "s3://data/a.png", "note": "n", **classification("c", "cat")}
    assert parse_manifest_line(json.dumps(line), BUCKET).labels == ("cat",)
    # "source-ref" is never read as a label attribute, even next to a "source-ref-metadata"
    odd = {
        "source-ref": "s3://data/a.png",
        "source-ref-metadata": {"type": "groundtruth/image-classification"},
    }
    assert parse_manifest_line(json.dumps(odd), BUCKET).labels == ()
    # Boxes of two object-detection attributes add up
    two = boxes_line()
    two["bb2"], two["bb2-metadata"] = two["bb"], two["bb-metadata"]
    assert parse_manifest_line(json.dumps(two), BUCKET).boxes == 2
    # A one-pixel-wide image is a valid size
    narrow = boxes_line()
    narrow["bb"]["image_size"][0]["width"] = 1
    narrow["bb"]["annotations"][0].update(left=0, width=1)
    assert parse_manifest_line(json.dumps(narrow), BUCKET).boxes == 1


def test_image_size_and_box_count_limits() -> None:
    flat = boxes_line()
    flat["bb"]["image_size"][0]["height"] = 1
    flat["bb"]["annotations"][0].update(top=0, height=1)
    assert parse_manifest_line(json.dumps(flat), BUCKET).boxes == 1
    with pytest.raises(Rejected, match="width and height must be positive integers"):
        parse_manifest_line(bad("bb.image_size.0.height", 0), BUCKET)
    fifty = boxes_line()
    fifty["bb"]["annotations"] = [{"class_id": 0, "left": 0, "top": 0, "width": 1, "height": 1}] * 50
    fifty["bb-metadata"]["objects"] = [{}] * 50
    assert parse_manifest_line(json.dumps(fifty), BUCKET).boxes == 50


# --- end-of-image markers and the labeling task of a manifest line --------------------------------
def test_truncated_images_are_rejected_with_the_full_message() -> None:
    with pytest.raises(Rejected) as jpeg_cut:
        check_image_end("JPEG", b"\xff\xd8\x00\x01\x02")
    assert str(jpeg_cut.value) == (
        "the JPEG file does not end with its end-of-image marker: the upload was cut short or the file "
        "is damaged; upload the complete file again"
    )
    with pytest.raises(Rejected) as png_cut:
        check_image_end("PNG", b"\x00\x00\x00\x00IEND\xaeB`")
    assert str(png_cut.value) == (
        "the PNG file does not end with its IEND chunk: the upload was cut short or the file is "
        "damaged; upload the complete file again"
    )


def test_only_zero_bytes_may_follow_the_jpeg_end_marker() -> None:
    check_image_end("JPEG", b"\x01\xff\xd9\x00\x00")
    check_image_end("PNG", b"\x00\x00\x00\x00IEND\xaeB`\x82")
    with pytest.raises(Rejected, match="end-of-image marker"):
        check_image_end("JPEG", b"\x01\xff\xd9X")


def test_a_line_s_task_is_bounding_boxes_when_it_has_any_else_image_level_labels() -> None:
    image_level = {"source-ref": f"s3://{BUCKET}/a.png", **classification("c", "road")}
    both = boxes_line(**classification("cls", "road"))
    assert parse_manifest_line(json.dumps(boxes_line()), BUCKET).task == "OBJECT_LOCALIZATION"
    assert parse_manifest_line(json.dumps(both), BUCKET).task == "OBJECT_LOCALIZATION"
    assert parse_manifest_line(json.dumps(image_level), BUCKET).task == "IMAGE_LEVEL_LABELS"
    assert parse_manifest_line('{"source-ref": "s3://data/a.png"}', BUCKET).task is None
