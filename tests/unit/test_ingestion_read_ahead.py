"""A batch's image headers are read ahead concurrently and answered once each, rejections included."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from PIL import Image

from lambdas.ingestion.batch import batch_images as _batch_images
from lambdas.ingestion.objects import ObjectGone, S3ObjectSource
from lambdas.ingestion.validation import ImageInfo, Rejected

BUCKET = "data"


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_headers_are_read_ahead_and_served_once(s3: Any) -> None:
    # Given three images of a batch
    for index in range(3):
        s3.put_object(Bucket=BUCKET, Key=f"digits/train/7/{index}.png", Body=png(64 + index, 80))
    source = S3ObjectSource(s3)
    objects = [(BUCKET, f"digits/train/7/{index}.png", None) for index in range(3)]
    # When the batch's headers are read ahead
    assert source.prefetch_image_infos(objects) == 3
    # Then the reads are answered from memory (the objects are gone from S3 by now) ...
    for index in range(3):
        s3.delete_object(Bucket=BUCKET, Key=f"digits/train/7/{index}.png")
    assert source.read_image_info(BUCKET, "digits/train/7/1.png", None) == ImageInfo("PNG", 65, 80)
    # ... once: a second read goes to S3 again, which no longer has the object
    with pytest.raises(ObjectGone):
        source.read_image_info(BUCKET, "digits/train/7/1.png", None)


def test_rejections_read_ahead_are_raised_on_read(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="digits/train/7/empty.png", Body=b"")
    s3.put_object(Bucket=BUCKET, Key="digits/train/7/ok.png", Body=png(64, 64))
    source = S3ObjectSource(s3)
    objects = [(BUCKET, "digits/train/7/empty.png", None), (BUCKET, "digits/train/7/missing.png", None)]
    assert source.prefetch_image_infos([*objects, (BUCKET, "digits/train/7/ok.png", None)]) == 3
    with pytest.raises(Rejected, match="empty"):
        source.read_image_info(*objects[0])
    with pytest.raises(ObjectGone):
        source.read_image_info(*objects[1])


def test_a_new_batch_forgets_what_the_last_one_read_ahead(s3: Any) -> None:
    for name in ("a", "b"):
        s3.put_object(Bucket=BUCKET, Key=f"digits/train/7/{name}.png", Body=png(64, 64))
    source = S3ObjectSource(s3)
    source.prefetch_image_infos(
        [(BUCKET, "digits/train/7/a.png", None), (BUCKET, "digits/train/7/b.png", None)]
    )
    assert (
        source.prefetch_image_infos([(BUCKET, "digits/train/7/a.png", None)]) == 0
    )  # one image: read inline
    s3.delete_object(Bucket=BUCKET, Key="digits/train/7/b.png")
    with pytest.raises(ObjectGone):
        source.read_image_info(BUCKET, "digits/train/7/b.png", None)


def test_batch_images_are_the_uploaded_images_of_the_data_bucket() -> None:
    def record(bucket: str, key: str, event: str = "ObjectCreated:Put") -> dict[str, Any]:
        import json

        body = {"Records": [{"eventName": event, "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]}
        return {"body": json.dumps(body)}

    event = {
        "Records": [
            record(BUCKET, "digits/train/7/a+b.png"),
            record(BUCKET, "digits/train/manifest.jsonl"),
            record("other", "digits/train/7/c.png"),
            record(BUCKET, "digits/train/7/d.jpg", event="ObjectRemoved:Delete"),
            {"body": "not json"},
            {"body": '{"Records": [{"eventName": "ObjectCreated:Put"}]}'},
        ]
    }
    assert _batch_images(event, BUCKET) == [(BUCKET, "digits/train/7/a b.png", None)]
