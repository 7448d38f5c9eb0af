"""`autopilot local serve`: the local stack kept running as servers on 127.0.0.1.

Writes `.local-stack/local.env` (endpoints, credentials, bucket and topic names) that any AWS
client can source, and `.local-stack/stack.json` (the stack's outputs, resolved as DescribeStacks
gives them on AWS) that the operator commands read with --local:

    autopilot local serve &
    . .local-stack/local.env
    aws s3 cp cat.png s3://$AUTOPILOT_BUCKET/digits/inference/cat.png
    autopilot status --local
"""

from __future__ import annotations

import json
import shlex
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from autopilot.local.demo_options import DemoOptions, demo_context
from autopilot.local.runtime import LocalRuntime, running_stack
from autopilot.local.template import assembly_template, construct_path, synth_template
from autopilot.local.wiring import TimelineEntry
from autopilot.ops.context import ENV_STACK_FILE
from lambdas.common.constants import (
    OUTPUT_DATA_BUCKET,
    OUTPUT_DETECTIONS_TOPIC,
    OUTPUT_LIFECYCLE_TOPIC,
    OUTPUT_SETTINGS_PARAMETER,
    OUTPUT_STATE_TABLE,
)

STATE_DIR = Path(".local-stack")
# AUTOPILOT_* variable of local.env -> the stack output it carries.
ENV_OUTPUTS = {
    "AUTOPILOT_BUCKET": OUTPUT_DATA_BUCKET,
    "AUTOPILOT_LIFECYCLE_TOPIC_ARN": OUTPUT_LIFECYCLE_TOPIC,
    "AUTOPILOT_DETECTIONS_TOPIC_ARN": OUTPUT_DETECTIONS_TOPIC,
    "AUTOPILOT_STATE_TABLE": OUTPUT_STATE_TABLE,
    "AUTOPILOT_SETTINGS_PARAMETER": OUTPUT_SETTINGS_PARAMETER,
}


@dataclass
class ServeOptions:
    state_dir: Path = STATE_DIR
    port: int = 0  # moto server port (0: a free one)
    speed: float = 60.0
    fast_settings: bool = True  # the demo's short waits (idle minutes, poll seconds)
    duration_s: float | None = None  # stop after this long (tests); None: until Ctrl-C
    verbose: bool = False
    ready_file: Path | None = None  # written once the stack is up (scripts wait for it), removed on exit
    iam: bool = True  # every call and delivery checked against the template's policies
    app: Path | None = None  # an already synthesized cloud assembly to run (instead of synthesizing)


def outputs(runtime: LocalRuntime) -> dict[str, str]:
    """The names a user needs, as AUTOPILOT_* variables."""
    stack_outputs = runtime.outputs()
    return {name: stack_outputs[key] for name, key in ENV_OUTPUTS.items() if key in stack_outputs}


def env_lines(runtime: LocalRuntime, engine_url: str, stack_file: Path) -> list[str]:
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": runtime.region,
        "AWS_REGION": runtime.region,
        "AWS_ENDPOINT_URL": runtime.moto_url or "",
        "AWS_ENDPOINT_URL_REKOGNITION": engine_url,
        "AWS_ENDPOINT_URL_LAMBDA": runtime.lambda_url or "",
        ENV_STACK_FILE: str(stack_file.resolve()),
        **outputs(runtime),
    }
    lines = ["# Written by `autopilot local serve`; source it: . .local-stack/local.env"]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in values.items()]
    return lines


def write_state(runtime: LocalRuntime, engine_url: str, state_dir: Path) -> tuple[Path, Path]:
    state_dir.mkdir(parents=True, exist_ok=True)
    stack_file = state_dir / "stack.json"
    resources = runtime.template.get("Resources", {})
    stack_file.write_text(
        json.dumps(
            {
                "account": runtime.account,
                "region": runtime.region,
                "endpoints": {
                    "moto": runtime.moto_url,
                    "rekognition": engine_url,
                    "lambda": runtime.lambda_url,
                },
                # What the operator commands read (as DescribeStacks' Outputs on AWS).
                "outputs": runtime.outputs(),
                "resources": {lid: str(value) for lid, value in runtime.resolver.physical_ids.items()},
                "paths": {
                    lid: construct_path(resources.get(lid, {})) for lid in runtime.resolver.physical_ids
                },
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    env_file = state_dir / "local.env"
    env_file.write_text("\n".join(env_lines(runtime, engine_url, stack_file)) + "\n", encoding="utf-8")
    return env_file, stack_file


def write_ready_file(
    path: Path, runtime: LocalRuntime, engine_url: str, env_file: Path, stack_file: Path
) -> None:
    """The readiness signal: written whole (rename), so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(
        json.dumps(
            {
                "ready": True,
                "aws_endpoint": runtime.moto_url,
                "rekognition_endpoint": engine_url,
                "env_file": str(env_file.resolve()),
                "stack_file": str(stack_file.resolve()),
                **outputs(runtime),
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    partial.replace(path)


def iam_line(figures: dict[str, Any]) -> str:
    """The run's IAM figures on one line (serve prints it when it stops)."""
    if not figures.get("enforced"):
        return "IAM: not enforced (--no-iam)"
    line = (
        f"IAM: {figures['checked']} distinct (principal, action, resource) checked, "
        f"{figures['denied']} denied"
    )
    for key, label in (
        ("unmapped", "unmapped operations"),
        ("unknown_condition_keys", "unknown condition keys"),
    ):
        if figures[key]:
            line += f"; {label}: {', '.join(figures[key])}"
    for denial in figures["denials"][:5]:
        line += f"\n  denied: {denial}"
    return line


def serve(options: ServeOptions, out: TextIO, stop: threading.Event | None = None) -> int:
    from autopilot.engine import EngineConfig, EngineServer

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    stop = stop or threading.Event()
    demo_options = DemoOptions(speed=options.speed)
    if options.app is not None:
        out.write(f"reading the cloud assembly {options.app}...\n")
        template = assembly_template(options.app)
    else:
        context = demo_context(demo_options) if options.fast_settings else None
        out.write("synthesizing the CDK app...\n")
        out.flush()
        template = synth_template(context, outdir=str(options.state_dir / "cdk.out"))
    engine = EngineServer(EngineConfig(time_scale=1.0 / options.speed))
    engine_url = engine.start()
    lock = threading.Lock()

    def show(entry: TimelineEntry) -> None:
        if not options.verbose and (
            entry.source == "scheduler" or (entry.source == "lambda" and " ok " in entry.text)
        ):
            return
        with lock:
            out.write(f"{entry.elapsed_s:8.1f}s  {entry.source:<13} {entry.text}\n")
            out.flush()

    log_path = options.state_dir / "functions.log"
    options.state_dir.mkdir(parents=True, exist_ok=True)
    try:
        with (
            open(log_path, "w", encoding="utf-8") as log_file,
            running_stack(
                template,
                clock_speed=options.speed,
                extra_environment={"AWS_ENDPOINT_URL_REKOGNITION": engine_url},
                on_timeline=show,
                capture_output=log_file,
                moto_server_port=options.port,
                iam=options.iam,
            ) as runtime,
        ):
            env_file, stack_file = write_state(runtime, engine_url, options.state_dir)
            if options.ready_file is not None:
                write_ready_file(options.ready_file, runtime, engine_url, env_file, stack_file)
            bucket = outputs(runtime).get("AUTOPILOT_BUCKET", "?")
            out.write(
                f"local stack up: AWS services at {runtime.moto_url}, Custom Labels engine at {engine_url}\n"
                f"  env file:  . {env_file}\n"
                f"  upload:    aws s3 cp image.png s3://{bucket}/digits/train/<label>/image.png\n"
                f"  operate:   autopilot status --local\n"
                f"  function logs: {log_path}\n"
                "Ctrl-C to stop.\n"
            )
            out.flush()
            deadline = time.monotonic() + options.duration_s if options.duration_s else None
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                stop.wait(0.5)
            out.write(iam_line(runtime.iam_summary()) + "\n")
    except KeyboardInterrupt:
        pass
    finally:
        if options.ready_file is not None:
            options.ready_file.unlink(missing_ok=True)
        engine.stop(wait_for_training=5.0)
    out.write("local stack stopped\n")
    return 0
