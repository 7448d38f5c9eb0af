"""`autopilot report P [--version V] [--out report.html]`: one self-contained HTML page with the
version's evaluation (per-label figures, confusion matrix, the test images it got wrong, beside
the previous production version), the datasets, and the last days of serving and cost."""

from __future__ import annotations

import argparse
from pathlib import Path

from autopilot.ops.context import Context, add_command

MAX_THUMBNAILS = 24


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = add_command(commands, "report", write_report, __doc__)
    parser.add_argument("project")
    parser.add_argument("--version", help="VersionName (default: the production version)")
    parser.add_argument(
        "--out",
        dest="report_path",
        type=Path,
        default=Path("report.html"),
        help="file to write (default report.html)",
    )
    parser.add_argument("--days", type=float, default=7.0, help="days of serving to show (default 7)")
    parser.add_argument(
        "--max-thumbnails",
        type=int,
        default=MAX_THUMBNAILS,
        help=f"wrong test images shown (default {MAX_THUMBNAILS})",
    )


def build(context: Context, project: str, version: str | None, days: float, max_thumbnails: int) -> str:
    from autopilot.ops.report_data import gather
    from autopilot.ops.report_render import render

    return render(gather(context, project, version, days=days, max_images=max_thumbnails))


def write_report(context: Context) -> int:
    """an HTML report of a version's evaluation, the datasets and the last days of serving"""

    args = context.args
    page = build(context, args.project, args.version, args.days, args.max_thumbnails)
    path: Path = args.report_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    context.emit(
        {"project": args.project, "out": str(path), "bytes": len(page.encode())},
        f"wrote {path} ({len(page.encode()) / 1024:.0f} KiB)",
    )
    return 0
