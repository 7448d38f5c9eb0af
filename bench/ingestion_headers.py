"""Ingestion's image header reads: one at a time, or a batch read ahead concurrently.

    python -m bench.ingestion_headers [--images 200] [--batch 10] [--latency-ms 0,20,50]

Puts N PNGs in moto S3 and reads every header through `S3ObjectSource` twice: sequentially (the
handler before the read-ahead) and batch by batch with `prefetch_image_infos` (the handler now,
HEADER_READ_THREADS threads). In process, moto answers a GET in about a millisecond of CPU, so
there is nothing to overlap; a real ranged GET waits for a network round trip. `--latency-ms` adds
that wait to every GetObject (a sleep in a botocore hook, i.e. modelled, not measured S3 latency),
which is what the threads overlap. Writes bench/results/ingestion_headers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "ingestion_headers.json"
BUCKET = "headers"


def measure(images: int, batch: int, latency_ms: float) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from bench.ingestion_burst import png_bytes
    from lambdas.ingestion.objects import HEADER_READ_THREADS, S3ObjectSource

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        body = png_bytes()
        objects = [(BUCKET, f"digits/train/7/{index:05d}.png", None) for index in range(images)]
        for _, key, _ in objects:
            client.put_object(Bucket=BUCKET, Key=key, Body=body)

        def wait(**_: Any) -> None:
            time.sleep(latency_ms / 1000)

        if latency_ms > 0:
            client.meta.events.register("before-call.s3.GetObject", wait)
        source = S3ObjectSource(client)
        started = time.perf_counter()
        for object_id in objects:
            source.read_image_info(*object_id)
        sequential = time.perf_counter() - started

        started = time.perf_counter()
        for first in range(0, images, batch):
            chunk = objects[first : first + batch]
            source.prefetch_image_infos(chunk)
            for object_id in chunk:
                source.read_image_info(*object_id)
        read_ahead = time.perf_counter() - started
    return {
        "images": images,
        "batch": batch,
        "threads": HEADER_READ_THREADS,
        "modelled_get_latency_ms": latency_ms,
        "sequential_s": round(sequential, 3),
        "read_ahead_s": round(read_ahead, 3),
        "speedup": round(sequential / read_ahead, 2) if read_ahead else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument(
        "--batch", type=int, default=100, help="SQS batch size of the ingestion trigger (cdk.json)"
    )
    parser.add_argument("--latency-ms", default="0,20,50", help="comma-separated modelled GET latencies")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    try:
        latencies = [float(value) for value in args.latency_ms.split(",") if value.strip()]
    except ValueError:
        parser.error(f"--latency-ms must be comma-separated numbers, got {args.latency_ms!r}")
    if args.images < 1 or args.batch < 1 or not latencies or min(latencies) < 0:
        parser.error("--images and --batch must be >= 1, --latency-ms non-negative numbers")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    rows = [measure(args.images, args.batch, latency) for latency in latencies]
    print(f"{'GET latency':>12} {'sequential s':>13} {'read-ahead s':>13} {'speed-up':>9}")
    for row in rows:
        print(
            f"{row['modelled_get_latency_ms']:>10.0f}ms {row['sequential_s']:13.3f} "
            f"{row['read_ahead_s']:13.3f} {row['speedup']:>8}x"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"{args.images} images in batches of {args.batch}; written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
