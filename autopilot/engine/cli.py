"""`autopilot engine ...`: run the local engine, and arm faults in a running one."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import urllib.request
from typing import Any

from autopilot.engine.config import EngineConfig
from autopilot.engine.faults import KINDS


def register(subparsers: Any) -> None:
    engine = subparsers.add_parser("engine", help="the local Rekognition Custom Labels engine")
    commands = engine.add_subparsers(dest="engine_command", metavar="ENGINE_COMMAND", required=True)

    serve = commands.add_parser("serve", help="serve the Rekognition JSON API over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=4599, help="0 picks a free port")
    serve.add_argument(
        "--data-dir", default=None, help="keep projects, datasets and models here across restarts"
    )
    serve.add_argument(
        "--time-scale", type=float, default=1.0, help="multiplies simulated durations (0.01 for fast runs)"
    )
    serve.set_defaults(func=_serve)

    fault = commands.add_parser("fault", help="arm a fault in a running engine (reliability tests)")
    target = fault.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="the engine's URL, e.g. http://127.0.0.1:4599")
    target.add_argument(
        "--local",
        action="store_true",
        help="the engine of the running local stack (from .local-stack/local.env)",
    )
    target.add_argument("--env-file", help="the engine named in this env file (written by `local serve`)")
    fault.add_argument("kind", choices=[*KINDS, "clear"])
    fault.add_argument(
        "--operation", default=None, help="for throttle/error: the operation, e.g. DetectCustomLabels"
    )
    fault.add_argument("--count", type=int, default=1, help="occurrences; -1 until cleared")
    fault.add_argument("--project", default=None, help="only this project")
    fault.add_argument("--code", default="InternalServerError", help="for error: the error code")
    fault.set_defaults(func=_fault)


def _serve(args: argparse.Namespace) -> int:
    from autopilot.engine.server import EngineServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    server = EngineServer(EngineConfig(time_scale=args.time_scale, data_dir=args.data_dir))

    def ready(url: str) -> None:
        print(f"Rekognition engine listening on {url} (time scale {args.time_scale}); Ctrl-C stops it.")
        print(f"Point clients at it: export AWS_ENDPOINT_URL_REKOGNITION={url}", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(args.host, args.port, on_ready=ready)
    return 0


def engine_url(args: argparse.Namespace) -> str:
    """--url, or AWS_ENDPOINT_URL_REKOGNITION of the local stack's env file."""
    if args.url:
        return str(args.url)
    from pathlib import Path

    from autopilot.ops.context import DEFAULT_LOCAL_ENV, CommandError, parse_env_file

    path = Path(args.env_file) if args.env_file else DEFAULT_LOCAL_ENV
    url = parse_env_file(path).get("AWS_ENDPOINT_URL_REKOGNITION")
    if not url:
        raise CommandError(
            f"{path} names no engine (AWS_ENDPOINT_URL_REKOGNITION); restart `autopilot local serve`"
        )
    return url


def _fault(args: argparse.Namespace) -> int:
    from autopilot.ops.context import CommandError

    try:
        url = engine_url(args).rstrip("/") + "/_engine/faults"
    except CommandError as error:
        sys.stderr.write(f"error: {error}\n")
        return error.code
    if args.kind == "clear":
        request = urllib.request.Request(url, method="DELETE")
    else:
        body: dict[str, Any] = {"kind": args.kind, "count": args.count}
        if args.operation:
            body["operation"] = args.operation
        if args.project:
            body["project"] = args.project
        if args.kind == "error":
            body["code"] = args.code
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
        )
    with urllib.request.urlopen(request, timeout=10) as response:  # the engine's own control route
        print(json.dumps(json.loads(response.read()), indent=2))
    return 0
