"""`autopilot entries` (ListDatasetEntries with all its filters) and `autopilot labels`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from autopilot.ops.context import Context, add_command, dataset_arn, iter_pages

MAX_PAGE = 100


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    entries = add_command(commands, "entries", list_entries)
    entries.add_argument("project")
    entries.add_argument(
        "--dataset", choices=("train", "test"), default="train", help="dataset (default train)"
    )
    entries.add_argument("--label", action="append", dest="labels", help="ContainsLabels (repeatable)")
    labeled = entries.add_mutually_exclusive_group()
    labeled.add_argument("--labeled", dest="labeled", action="store_true", default=None, help="Labeled=true")
    labeled.add_argument("--unlabeled", dest="labeled", action="store_false", help="Labeled=false")
    entries.add_argument("--source-ref-contains", help="SourceRefContains")
    errors = entries.add_mutually_exclusive_group()
    errors.add_argument(
        "--has-errors", dest="has_errors", action="store_true", default=None, help="HasErrors=true"
    )
    errors.add_argument("--no-errors", dest="has_errors", action="store_false", help="HasErrors=false")
    entries.add_argument(
        "--max-results", type=_page_size, default=MAX_PAGE, help="page size, 1-100 (default 100)"
    )
    entries.add_argument("--next-token", help="continue from this NextToken")
    entries.add_argument("--all", action="store_true", help="follow NextToken through every page")

    labels = add_command(commands, "labels", list_labels)
    labels.add_argument("project")
    labels.add_argument("--dataset", choices=("train", "test"), default="train")


def _page_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"--max-results must be 1-{MAX_PAGE} (the API's limit), got {value}")
    return value


def entry_request(args: argparse.Namespace, arn: str) -> dict[str, Any]:
    request: dict[str, Any] = {"DatasetArn": arn, "MaxResults": args.max_results}
    if args.labels:
        request["ContainsLabels"] = args.labels
    if args.labeled is not None:
        request["Labeled"] = args.labeled
    if args.source_ref_contains:
        request["SourceRefContains"] = args.source_ref_contains
    if args.has_errors is not None:
        request["HasErrors"] = args.has_errors
    if args.next_token:
        request["NextToken"] = args.next_token
    return request


def list_entries(context: Context) -> int:
    """list dataset entries (ListDatasetEntries with its filters and pagination)

    Lists the Ground Truth lines of a dataset. Filters map to ListDatasetEntries.
    """

    args = context.args
    rekognition = context.client("rekognition")
    request = entry_request(args, dataset_arn(context, args.project, args.dataset))
    next_token = None
    if args.all:
        lines = list(iter_pages(rekognition.list_dataset_entries, "DatasetEntries", **request))
    else:
        page = rekognition.list_dataset_entries(**request)
        lines, next_token = page.get("DatasetEntries", []), page.get("NextToken")
    entries = [json.loads(line) for line in lines]

    def text() -> str:
        rows = [_summary(entry) for entry in entries]
        if next_token:
            rows.append(f"(more: --next-token {next_token})")
        return "\n".join(rows) if rows else "no entries match"

    context.emit({"entries": entries, "count": len(entries), "next_token": next_token}, text)
    return 0


def _summary(entry: dict[str, Any]) -> str:
    labels = []
    for key, value in entry.items():
        if key.endswith("-metadata") and isinstance(value, dict):
            if "class-name" in value:
                labels.append(str(value["class-name"]))
            labels.extend(str(name) for name in (value.get("class-map") or {}).values())
    errors = "errors" if "errors" in json.dumps(entry) else ""
    return f"{entry.get('source-ref', '?')}  {','.join(sorted(set(labels))) or '-'}  {errors}".rstrip()


def list_labels(context: Context) -> int:
    """labels of a dataset with entry and bounding-box counts (ListDatasetLabels)"""

    args = context.args
    rekognition = context.client("rekognition")
    arn = dataset_arn(context, args.project, args.dataset)
    labels = [
        {
            "label": item["LabelName"],
            "entries": (item.get("LabelStats") or {}).get("EntryCount", 0),
            "bounding_boxes": (item.get("LabelStats") or {}).get("BoundingBoxCount", 0),
        }
        for item in iter_pages(
            rekognition.list_dataset_labels, "DatasetLabelDescriptions", DatasetArn=arn, MaxResults=MAX_PAGE
        )
    ]

    def text() -> str:
        if not labels:
            return "no labels yet"
        return "\n".join(
            f"{row['label']:<30} entries {row['entries']:>6}  boxes {row['bounding_boxes']:>6}"
            for row in labels
        )

    context.emit({"labels": labels}, text)
    return 0
