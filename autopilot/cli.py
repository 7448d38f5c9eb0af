"""The `autopilot` command. Each concern registers its own sub-commands.

    autopilot engine serve ...   the local Custom Labels engine   (autopilot/engine/cli.py)
    autopilot local run|serve    the offline stack and the demo   (autopilot/local/cli.py)
    autopilot status|entries|labels|train|start|stop|auto|promote|rollback|detect|tail
                                 operator commands, AWS or local  (autopilot/ops/)

Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 timed out, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autopilot",
        description="Custom Labels Autopilot: run Rekognition Custom Labels hands-off, on AWS or offline.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from autopilot.engine import cli as engine_cli

    engine_cli.register(commands)
    from autopilot.local import cli as local_cli

    local_cli.register(commands)
    from autopilot import ops

    ops.register(commands)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Runs one command; `out` receives the command's output (default: stdout)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.out = out
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
