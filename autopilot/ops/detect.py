"""`autopilot detect PROJECT FILE`: classify a local image with the production version."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from autopilot.ops.context import EXIT_NOT_FOUND, STATE_TABLE, CommandError, Context, add_command
from lambdas.common.constants import FEATURE_CONTENT_MODERATION, IMAGE_SUFFIXES
from lambdas.common.production import get_production

MAX_BYTES = 4 * 1024 * 1024  # DetectCustomLabels Image.Bytes limit


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = add_command(commands, "detect", detect)
    parser.add_argument("project")
    parser.add_argument("file", type=Path, help="a PNG or JPEG, at most 4 MB")
    parser.add_argument(
        "--min-confidence", type=float, help="0-100 (default: each label's assumed threshold)"
    )
    parser.add_argument("--max-results", type=int, help="top N labels")
    parser.add_argument(
        "--moderation", action="store_true", help="use DetectModerationLabels (CONTENT_MODERATION projects)"
    )


def read_image(path: Path) -> bytes:
    if not path.is_file():
        raise CommandError(f"{path} does not exist", EXIT_NOT_FOUND)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise CommandError(f"{path}: only {', '.join(IMAGE_SUFFIXES)} images can be classified")
    data = path.read_bytes()
    if len(data) > MAX_BYTES:
        raise CommandError(f"{path} is {len(data)} bytes; images sent as bytes must be at most 4 MB")
    return data


def detect(context: Context) -> int:
    """classify a local image with the production version (it must be running)"""

    args = context.args
    image = read_image(args.file)
    record = get_production(
        args.project, table_name=context.resources.find(STATE_TABLE), client=context.client("dynamodb")
    )
    if record is None:
        raise CommandError(f"project {args.project!r} has no production version yet", EXIT_NOT_FOUND)
    rekognition = context.client("rekognition")
    request: dict[str, Any] = {"Image": {"Bytes": image}}
    if args.min_confidence is not None:
        request["MinConfidence"] = args.min_confidence
    if args.moderation:
        request["ProjectVersion"] = record.version_arn
        response = rekognition.detect_moderation_labels(**request)
        labels = [
            {"name": item["Name"], "confidence": item["Confidence"]}
            for item in response.get("ModerationLabels", [])
        ]
        feature = FEATURE_CONTENT_MODERATION
    else:
        request["ProjectVersionArn"] = record.version_arn
        if args.max_results is not None:
            request["MaxResults"] = args.max_results
        try:
            response = rekognition.detect_custom_labels(**request)
        except rekognition.exceptions.ResourceNotReadyException as error:
            raise CommandError(
                f"{record.version_name} is not running; start it with `autopilot start {args.project} --wait`"
            ) from error
        labels = [
            {
                "name": item["Name"],
                "confidence": item["Confidence"],
                **({"geometry": item["Geometry"]} if "Geometry" in item else {}),
            }
            for item in response.get("CustomLabels", [])
        ]
        feature = "CUSTOM_LABELS"
    result = {
        "project": args.project,
        "file": str(args.file),
        "version": record.version_name,
        "feature": feature,
        "labels": labels,
    }

    def text() -> str:
        if not labels:
            return f"{args.file}: no label above the threshold ({record.version_name})"
        return "\n".join(f"{item['name']:<30} {item['confidence']:6.2f}%" for item in labels)

    context.emit(result, text)
    return 0
