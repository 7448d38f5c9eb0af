"""`autopilot local run` (the one-command demo) and `autopilot local serve`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from autopilot.local.demo_options import DemoOptions


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    local = commands.add_parser(
        "local",
        help="run the whole application offline (moto + the local Custom Labels engine)",
        description="The stack synthesized from the CDK app, provisioned in moto and wired to the "
        "real handlers.",
    )
    sub = local.add_subparsers(dest="local_command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="the end-to-end demo on bundled digits images (about 3 minutes)",
        description="upload a labeled dataset -> ingestion -> training -> promotion -> inference uploads -> "
        "auto-start -> detections on SNS -> idle stop, with a timeline and a summary.",
    )
    defaults = DemoOptions()
    run.add_argument("--project", default=defaults.project, help=f"project (default {defaults.project})")
    run.add_argument(
        "--speed", type=float, default=defaults.speed, help=f"clock speed-up (default {defaults.speed:g})"
    )
    run.add_argument("--train-per-label", type=int, default=defaults.train_per_label)
    run.add_argument("--test-per-label", type=int, default=defaults.test_per_label)
    run.add_argument("--held-out-per-label", type=int, default=defaults.held_out_per_label)
    run.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help=f"shuffle of the digits before the split (default {defaults.seed})",
    )
    run.add_argument(
        "--idle-minutes", type=int, default=defaults.idle_minutes, help="idle minutes before the model stops"
    )
    run.add_argument(
        "--phase-timeout", type=float, default=defaults.phase_timeout_s, help="seconds per phase"
    )
    run.add_argument(
        "--state-dir", type=Path, default=defaults.state_dir, help="working folder (.local-stack)"
    )
    run.add_argument("--verbose", action="store_true", help="also show every function invocation and tick")
    run.add_argument("--json", action="store_true", help="print the report as JSON (progress goes to stderr)")
    _add_stack_arguments(run)
    run.set_defaults(func=run_command)

    serve = sub.add_parser(
        "serve",
        help="keep the local stack running; writes .local-stack/local.env for AWS clients",
    )
    serve.add_argument(
        "--port", type=int, default=0, help="port of the AWS services endpoint (default: free)"
    )
    serve.add_argument("--speed", type=float, default=60.0, help="clock speed-up for schedules (default 60)")
    serve.add_argument(
        "--cdk-settings",
        action="store_true",
        help="use cdk.json settings unchanged (default: short idle/poll times so things happen quickly)",
    )
    serve.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    serve.add_argument("--state-dir", type=Path, default=Path(".local-stack"))
    serve.add_argument("--verbose", action="store_true")
    serve.add_argument(
        "--ready-file",
        type=Path,
        help="write this file (JSON: endpoints, env file) once the stack is up, and remove it on exit",
    )
    _add_stack_arguments(serve)
    serve.set_defaults(func=serve_command)


def _add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--app",
        type=Path,
        metavar="ASSEMBLY",
        help="run this already synthesized cloud assembly (a cdk.out folder) instead of synthesizing "
        "the CDK app, as `cdk deploy --app cdk.out`; its settings are used as synthesized",
    )
    parser.add_argument(
        "--no-iam",
        dest="iam",
        action="store_false",
        help="do not check calls and deliveries against the stack's IAM policies (debugging only)",
    )


def run_command(args: argparse.Namespace) -> int:
    from autopilot.local.demo import run_demo

    options = DemoOptions(
        project=args.project,
        speed=args.speed,
        train_per_label=args.train_per_label,
        test_per_label=args.test_per_label,
        held_out_per_label=args.held_out_per_label,
        seed=args.seed,
        idle_minutes=args.idle_minutes,
        phase_timeout_s=args.phase_timeout,
        state_dir=args.state_dir,
        verbose=args.verbose,
        iam=args.iam,
        app=args.app,
    )
    report = run_demo(options, out=sys.stderr if args.json else sys.stdout)
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    return 0 if report.ok else 1


def serve_command(args: argparse.Namespace) -> int:
    from autopilot.local.serve import ServeOptions, serve

    options = ServeOptions(
        state_dir=args.state_dir,
        port=args.port,
        speed=args.speed,
        fast_settings=not args.cdk_settings,
        duration_s=args.duration,
        verbose=args.verbose,
        ready_file=args.ready_file,
        iam=args.iam,
        app=args.app,
    )
    return serve(options, sys.stdout)
