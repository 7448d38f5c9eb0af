"""Image header parsing (no Pillow in the function: Pillow only makes the test images) and the
Custom Labels rules on images, labels and manifest lines."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

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

BUCKET = "data-bucket"


def encoded(fmt: str, size: tuple[int, int], **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 30, 200)).save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("size", [(64, 64), (640, 480), (4096, 205)])
def test_png_dimensions_come_from_ihdr(size: tuple[int, int]) -> None:
    assert read_image_header(encoded("PNG", size)) == ImageInfo("PNG", *size)


@pytest.mark.parametrize("options", [{}, {"progressive": True}, {"quality": 30, "optimize": True}])
def test_jpeg_dimensions_come_from_the_frame_header(options: dict[str, object]) -> None:
    assert read_image_header(encoded("JPEG", (300, 200), **options)) == ImageInfo("JPEG", 300, 200)


def test_jpeg_with_large_exif_asks_for_more_bytes_then_succeeds() -> None:
    # Given a JPEG whose EXIF segment pushes the frame header past the first 1 KB
    exif = Image.Exif()
    exif[0x010E] = "x" * 20_000  # ImageDescription
    data = encoded("JPEG", (128, 96), exif=exif.tobytes())
    # When only the first kilobyte is parsed / Then the parser says how far it must read
    with pytest.raises(NeedMoreBytes) as more:
        read_image_header(data[:1024])
    assert more.value.needed > 20_000
    # And reading as far as asked, segment by segment, finds the dimensions
    available = more.value.needed
    for _ in range(10):
        try:
            assert read_image_header(data[:available]) == ImageInfo("JPEG", 128, 96)
            break
        except NeedMoreBytes as again:
            available = again.needed
    else:
        pytest.fail("the frame header was never reached")
    assert available < len(data)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "WEBP"])
def test_other_formats_are_rejected_by_content(fmt: str) -> None:
    with pytest.raises(Rejected, match="not a PNG or JPEG"):
        read_image_header(encoded(fmt, (100, 100)))


def test_text_named_png_is_rejected() -> None:
    with pytest.raises(Rejected, match="checked by its content"):
        read_image_header(b"hello, this is not an image at all")


def test_damaged_png_header_is_rejected() -> None:
    data = bytearray(encoded("PNG", (100, 100)))
    data[12:16] = b"XXXX"
    with pytest.raises(Rejected, match="damaged"):
        read_image_header(bytes(data))


def test_jpeg_without_frame_header_is_rejected() -> None:
    with pytest.raises(Rejected, match="no frame header"):
        read_image_header(b"\xff\xd8\xff\xd9")


@pytest.mark.parametrize(
    ("width", "height", "size", "reason"),
    [
        (63, 100, 1000, "between 64 and 4096"),
        (4097, 1000, 1000, "between 64 and 4096"),
        (2000, 64, 1000, "aspect ratio of 31.2:1"),
        (1000, 1000, 15 * 1024 * 1024 + 1, "at most 15 MB"),
        (0, 100, 1000, "export the image again"),
    ],
)
def test_image_limits(width: int, height: int, size: int, reason: str) -> None:
    with pytest.raises(Rejected) as caught:
        check_image(ImageInfo("PNG", width, height), size)
    assert reason in str(caught.value)


def test_image_at_the_limits_passes() -> None:
    check_image(ImageInfo("JPEG", 64, 64), 15 * 1024 * 1024)
    check_image(ImageInfo("JPEG", 4096, 205), 1)  # 19.98:1


@pytest.mark.parametrize(
    ("name", "reason"),
    [("", "empty"), ("   ", "empty"), ("x" * 257, "at most 256"), (" cat", "space"), ("c\x00t", "control")],
)
def test_label_rules(name: str, reason: str) -> None:
    with pytest.raises(Rejected, match=reason):
        check_label(name)


def test_label_of_256_unicode_characters_passes() -> None:
    assert check_label("猫" * 256) == "猫" * 256


# ---------------------------------------------------------------------------------------------
# Manifest lines
# ---------------------------------------------------------------------------------------------


def classification(ref: str = f"s3://{BUCKET}/a.png", name: object = "cat") -> dict[str, object]:
    return {
        "source-ref": ref,
        "animal": 1,
        "animal-metadata": {"confidence": 1, "class-name": name, "type": "groundtruth/image-classification"},
    }


def detection(boxes: list[dict[str, object]], width: int = 100, height: int = 80) -> dict[str, object]:
    return {
        "source-ref": f"s3://{BUCKET}/d.jpg",
        "bounding-box": {
            "image_size": [{"width": width, "height": height, "depth": 3}],
            "annotations": boxes,
        },
        "bounding-box-metadata": {
            "objects": [{"confidence": 1} for _ in boxes],
            "class-map": {"0": "Echo", "1": "Dot"},
            "type": "groundtruth/object-detection",
        },
    }


def box(class_id: int = 0, left: float = 10, top: float = 10, width: float = 20, height: float = 20) -> dict:
    return {"class_id": class_id, "left": left, "top": top, "width": width, "height": height}


def test_image_level_line_is_accepted_and_compacted() -> None:
    entry = parse_manifest_line(json.dumps(classification(), indent=2).replace("\n", " "), BUCKET)
    assert entry.source_ref == f"s3://{BUCKET}/a.png"
    assert entry.labels == ("cat",)
    assert " " not in entry.line.replace("image-classification", "")


def test_several_image_level_labels_are_collected() -> None:
    line = classification()
    line["color"] = 0
    line["color-metadata"] = {"class-name": "black", "type": "groundtruth/image-classification"}
    assert parse_manifest_line(json.dumps(line), BUCKET).labels == ("cat", "black")


def test_object_localization_line_is_accepted() -> None:
    entry = parse_manifest_line(json.dumps(detection([box(0), box(1, left=50, top=40)])), BUCKET)
    assert entry.boxes == 2
    assert entry.labels == ("Echo", "Dot")


def test_source_ref_in_another_bucket_is_rejected() -> None:
    with pytest.raises(Rejected, match="all images of a dataset must be in the data bucket"):
        parse_manifest_line(json.dumps(classification(ref="s3://elsewhere/a.png")), BUCKET)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "one JSON object"),
        ('{"animal": 1}', 'no "source-ref"'),
        (json.dumps(classification(ref=f"s3://{BUCKET}/")), "names no object"),
        (json.dumps(classification(name=7)), "class-name"),
        (json.dumps(classification(name="x" * 300)), "at most 256"),
    ],
)
def test_bad_lines_are_rejected_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(Rejected) as caught:
        parse_manifest_line(text, BUCKET)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (detection([box(left=90)]), "extends outside the 100x80 image"),
        (detection([box(top=-1)]), "left and top must be >= 0"),
        (detection([box(width=0)]), "width and height > 0"),
        (detection([box(class_id=5)]), "not in the class-map"),
        (detection([box(left="10")]), "must be numbers"),
        (detection([box() for _ in range(51)]), "at most 50 are allowed"),
        (detection([box()], width=0), "positive integers"),
    ],
)
def test_bad_bounding_boxes_are_rejected(line: dict[str, object], reason: str) -> None:
    with pytest.raises(Rejected) as caught:
        parse_manifest_line(json.dumps(line), BUCKET)
    assert reason in str(caught.value)


def test_objects_must_align_with_annotations() -> None:
    line = detection([box(), box()])
    line["bounding-box-metadata"]["objects"] = [{"confidence": 1}]  # type: ignore[index]
    with pytest.raises(Rejected, match="one entry per annotation"):
        parse_manifest_line(json.dumps(line), BUCKET)


def test_unknown_metadata_type_is_rejected() -> None:
    line = classification()
    line["animal-metadata"]["type"] = "groundtruth/semantic-segmentation"  # type: ignore[index]
    with pytest.raises(Rejected, match="semantic-segmentation"):
        parse_manifest_line(json.dumps(line), BUCKET)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_complete_images_end_with_their_end_marker(fmt: str) -> None:
    data = encoded(fmt, (96, 64))
    check_image_end(fmt, data[-64:])


def test_jpeg_padded_with_zero_bytes_after_its_end_marker_passes() -> None:
    check_image_end("JPEG", encoded("JPEG", (96, 64))[-30:] + b"\x00" * 8)


@pytest.mark.parametrize(("fmt", "reason"), [("JPEG", "end-of-image marker"), ("PNG", "IEND")])
def test_truncated_images_are_rejected(fmt: str, reason: str) -> None:
    data = encoded(fmt, (96, 64))
    cut = data[: len(data) - 20]
    # The header is intact: only the end shows the truncation
    assert read_image_header(cut) == ImageInfo(fmt, 96, 64)
    with pytest.raises(Rejected, match=reason):
        check_image_end(fmt, cut[-64:])


def test_the_object_source_reads_the_last_bytes_of_the_object(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    from lambdas.ingestion.objects import S3ObjectSource

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data-bucket")
        # Larger than the first read, so the end is fetched with its own ranged GET
        big = Image.effect_noise((1024, 1024), 60).convert("RGB")
        buffer = io.BytesIO()
        big.save(buffer, "PNG")
        data = buffer.getvalue()
        assert len(data) > 64 * 1024
        s3.put_object(Bucket="data-bucket", Key="whole.png", Body=data)
        s3.put_object(Bucket="data-bucket", Key="cut.png", Body=data[:-100])
        source = S3ObjectSource(s3)
        assert source.read_image_info("data-bucket", "whole.png", None) == ImageInfo("PNG", 1024, 1024)
        with pytest.raises(Rejected, match="IEND"):
            source.read_image_info("data-bucket", "cut.png", None)
