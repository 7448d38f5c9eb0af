"""`autopilot local run`: the whole loop on a laptop, on real data, with the application's own wiring.

upload a labeled dataset -> ingestion -> training -> promotion -> inference uploads -> auto-start
-> detections published on SNS -> idle stop. Each phase waits (bounded) for what the stack itself
reports: lifecycle events on its SNS topic, detections on the detections topic, dataset stats in
the engine. When a part of the stack is missing or fails, the phase says so and the run stops
with exit code 1 instead of pretending.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, TextIO

import boto3
from botocore.exceptions import ClientError

from autopilot.local.demo_options import DemoOptions, DemoReport, Phase, demo_context
from autopilot.local.demo_summary import (
    dataset_stats,
    held_out_results,
    print_summary,
    project_events,
    published_detections,
    summarize,
)
from autopilot.local.runtime import LocalRuntime, patched_environ, running_stack
from autopilot.local.sample_data import DemoSplit, demo_split
from autopilot.local.synth_cache import cached_template
from autopilot.local.template import assembly_template, synth_template
from autopilot.local.wiring import TimelineEntry
from lambdas.common.constants import (
    EVENT_ENTRIES_APPLIED,
    EVENT_ENTRIES_REJECTED,
    EVENT_MODEL_RUNNING,
    EVENT_MODEL_START_FAILED,
    EVENT_MODEL_STOPPED,
    EVENT_TRAINING_COMPLETED,
    EVENT_TRAINING_FAILED,
    EVENT_TRAINING_SKIPPED,
    EVENT_TRAINING_STARTED,
    EVENT_VERSION_PROMOTED,
    EVENT_VERSION_REJECTED,
    INFERENCE_FOLDER,
    OUTPUT_DATA_BUCKET,
    TEST_FOLDER,
    TRAIN_FOLDER,
)


class PhaseFailedError(RuntimeError):
    pass


def _engine(options: DemoOptions) -> Any:
    try:
        from autopilot.engine import EngineConfig, EngineServer
    except ImportError as missing:
        raise PhaseFailedError(f"the local Custom Labels engine is not available: {missing}") from missing
    data_dir = options.state_dir / "engine"
    data_dir.mkdir(parents=True, exist_ok=True)
    return EngineServer(EngineConfig(time_scale=1.0 / options.speed, data_dir=None))


class Demo:
    def __init__(self, options: DemoOptions, out: TextIO | None = None, quiet: bool = False) -> None:
        self.options = options
        self.out = out
        self.quiet = quiet
        self.report = DemoReport()
        self.started = time.monotonic()
        self.runtime: LocalRuntime | None = None
        self.engine_url = ""
        self.split: DemoSplit | None = None
        self._failed = False
        self._say_lock = threading.Lock()

    # -- output ---------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        if self.out is not None and not self.quiet:
            with self._say_lock:
                self.out.write(text + "\n")
                self.out.flush()

    def _on_timeline(self, entry: TimelineEntry) -> None:
        if entry.source == "lambda" and not self.options.verbose and " ok " in entry.text:
            return  # successful invocations only in verbose mode; failures always show
        if not self.options.verbose and (
            EVENT_TRAINING_SKIPPED in entry.text
            or (entry.source == "scheduler" and "on request" not in entry.text)
        ):
            return  # periodic ticks and "nothing to train" checks only in verbose mode
        elapsed = time.monotonic() - self.started
        self.report.timeline.append({"t": round(elapsed, 2), "source": entry.source, "text": entry.text})
        self.say(f"  {elapsed:6.1f}s  {entry.source:<13} {entry.text}")

    # -- phases ---------------------------------------------------------------------------------
    def phase(self, name: str, action: Callable[[], str]) -> None:
        if self._failed:
            self.report.phases.append(Phase(name, "skipped"))
            return
        self.say(f"==> {name}")
        began = time.monotonic()
        try:
            detail = action()
            status = "ok"
        except PhaseFailedError as failure:
            detail, status = str(failure), "failed"
            self._failed = True
        seconds = time.monotonic() - began
        self.report.phases.append(Phase(name, status, round(seconds, 2), detail))
        marker = "ok" if status == "ok" else "FAILED"
        self.say(f"    {marker} in {seconds:.1f}s: {detail}")

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout_s: float | None = None) -> None:
        assert self.runtime is not None
        limit = timeout_s or self.options.phase_timeout_s
        if not self.runtime.run_until(predicate, timeout_s=limit):
            raise PhaseFailedError(f"gave up waiting for {what} after {limit:.0f}s. {self._diagnosis()}")

    def _diagnosis(self) -> str:
        assert self.runtime is not None
        failures = [i for i in self.runtime.lambdas.invocations if i.error is not None]
        hints = []
        if failures:
            last = failures[-1]
            hints.append(
                f"last function error: {last.function_name}: {last.error.get('errorType')}: "  # type: ignore[union-attr]
                f"{str(last.error.get('errorMessage'))[:300]}"  # type: ignore[union-attr]
            )
        if self.runtime.errors:
            hints.append("runtime: " + "; ".join(self.runtime.errors[-3:]))
        if not self.runtime.functions:
            hints.append("the synthesized stack has no Lambda functions")
        return " ".join(hints) or "No function failed; the stack may not implement this step yet."

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> DemoReport:
        options = self.options
        options.state_dir.mkdir(parents=True, exist_ok=True)
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        self.say(f"Custom Labels Autopilot, local run (project {options.project}, clock x{options.speed:g})")
        template: dict[str, Any] = {}

        # The demo images are rendered while the CDK app synthesizes (jsii runs in its own process).
        split_ready = threading.Thread(target=self._prepare_split, name="demo-data", daemon=True)
        split_ready.start()

        def synthesize() -> str:
            nonlocal template
            if options.app is not None:
                try:
                    template = assembly_template(options.app)
                except ValueError as error:
                    raise PhaseFailedError(str(error)) from error
                source = f"the cloud assembly {options.app}"
            else:
                from infra.app_factory import REPO_ROOT

                context = demo_context(options)
                template, reused = cached_template(
                    lambda: synth_template(context, outdir=str(options.state_dir / "cdk.out")),
                    REPO_ROOT,
                    context,
                    options.state_dir,
                )
                source = "the last synthesis (sources unchanged)" if reused else "the CDK app"
            split_ready.join()
            kinds = [res.get("Type") for res in template.get("Resources", {}).values()]
            return f"{len(kinds)} resources from {source}"

        self.phase("read the cloud assembly" if options.app else "synthesize the CDK app", synthesize)
        if self._failed:
            return self._finish()
        with ExitStack() as stack:
            log_path = options.state_dir / "functions.log"
            log_file = stack.enter_context(open(log_path, "w", encoding="utf-8"))
            engine = None

            def start() -> str:
                nonlocal engine
                engine = _engine(options)
                url = engine.start()
                self.engine_url = url
                stack.callback(engine.stop, wait_for_training=10.0)
                try:
                    return _start_stack(url)
                except (KeyError, ValueError, RuntimeError, ClientError) as error:  # cannot run this template
                    raise PhaseFailedError(f"the stack could not be provisioned locally: {error}") from error

            def _start_stack(url: str) -> str:
                self.runtime = stack.enter_context(
                    running_stack(
                        template,
                        clock_speed=options.speed,
                        extra_environment={"AWS_ENDPOINT_URL_REKOGNITION": url},
                        on_timeline=self._on_timeline,
                        capture_output=log_file,
                        iam=options.iam,
                    )
                )
                # Training waits until the dataset is in: the schedule resumes after ingestion.
                self.runtime.pause_schedules("Training")
                return f"{self.runtime.describe_wiring()}; engine at {url}; function logs in {log_path}"

            self.phase("start moto, the engine and the stack", start)
            if self.runtime is not None:
                self._flow()
                if options.iam:
                    self.phase("IAM: every call and delivery allowed by the stack's policies", self._iam)
                self._summarize()
                self.phase("write the model and serving report", self._write_report)
        return self._finish()

    def _iam(self) -> str:
        """Fails when the template's policies denied anything (an operation the checks cannot map
        to an action and ARN is refused, so it fails here too rather than pass unchecked)."""
        assert self.runtime is not None
        figures = self.runtime.iam_summary()
        if figures["denied"] or figures["unmapped"]:
            first = (figures["denials"] or figures["unmapped"])[0]
            unmapped = len(figures["unmapped"])
            raise PhaseFailedError(f"{figures['denied']} denied ({unmapped} unmapped): {first}")
        unknown = figures["unknown_condition_keys"]
        return f"{figures['checked']} distinct (principal, action, resource) checked, 0 denied" + (
            f"; condition keys not evaluated: {', '.join(unknown)}" if unknown else ""
        )

    def _write_report(self) -> str:
        """`autopilot report` of the run, through the same operator code path as on AWS."""
        import argparse

        from autopilot.local.serve import write_state
        from autopilot.ops.context import ENV_STACK_FILE, Context
        from autopilot.ops.report import build

        assert self.runtime is not None
        _, stack_file = write_state(self.runtime, self.engine_url, self.options.state_dir)
        path = self.options.state_dir / "report.html"
        with patched_environ({ENV_STACK_FILE: str(stack_file)}):
            context = Context(argparse.Namespace(json=False, local=False, env_file=None, region=None))
            path.write_text(build(context, self.options.project, None, 7.0, 24), encoding="utf-8")
        self.report.summary["report"] = str(path)
        return f"open {path} in a browser"

    def _prepare_split(self) -> None:
        options = self.options
        self.split = demo_split(
            options.train_per_label, options.test_per_label, options.held_out_per_label, seed=options.seed
        )

    def _bucket(self) -> str:
        assert self.runtime is not None
        try:
            return self.runtime.output(OUTPUT_DATA_BUCKET)
        except KeyError as missing:
            raise PhaseFailedError(f"the stack has no data bucket: {missing}") from missing

    def _flow(self) -> None:
        options = self.options
        project = options.project
        s3 = boto3.client("s3")

        def upload() -> str:
            if self.split is None:
                self._prepare_split()
            assert self.split is not None
            bucket = self._bucket()
            for folder, images in ((TRAIN_FOLDER, self.split.train), (TEST_FOLDER, self.split.test)):
                for image in images:
                    s3.put_object(
                        Bucket=bucket,
                        Key=f"{project}/{folder}/{image.label}/{image.filename}",
                        Body=image.png,
                        ContentType="image/png",
                    )
            return (
                f"{len(self.split.train)} train + {len(self.split.test)} test PNGs of "
                f"{len(self.split.labels())} labels to s3://{bucket}/{project}/"
            )

        self.phase("upload a labeled dataset (scikit-learn digits)", upload)

        def ingestion() -> str:
            assert self.split is not None
            expected = len(self.split.train) + len(self.split.test)

            def all_applied() -> bool:
                stats = self._dataset_stats()
                return sum(s.get("LabeledEntries", 0) for s in stats.values()) >= expected and not any(
                    s.get("Status", "").endswith("IN_PROGRESS") for s in stats.values()
                )

            self.wait_for(f"{expected} labeled dataset entries", all_applied)
            stats = self._dataset_stats()
            rejected = len(self.events(EVENT_ENTRIES_REJECTED))
            applied = len(self.events(EVENT_ENTRIES_APPLIED))
            return (
                ", ".join(
                    f"{kind}: {s.get('LabeledEntries', 0)} entries" for kind, s in sorted(stats.items())
                )
                + f"; entries.applied events: {applied}, rejections: {rejected}"
            )

        self.phase("ingestion (S3 -> SQS -> ingestion handler -> UpdateDatasetEntries)", ingestion)

        def training() -> str:
            def finished() -> bool:
                return bool(self.events(EVENT_TRAINING_COMPLETED) or self.events(EVENT_TRAINING_FAILED))

            assert self.runtime is not None
            self.runtime.resume_schedules("Training")
            self.runtime.fire("Training")  # the dataset is complete: the next scheduled check is now
            self.wait_for(
                f"{EVENT_TRAINING_STARTED} on the training schedule",
                lambda: bool(self.events(EVENT_TRAINING_STARTED)),
            )
            self.wait_for(f"{EVENT_TRAINING_COMPLETED}", finished)
            if self.events(EVENT_TRAINING_FAILED):
                raise PhaseFailedError(
                    f"training failed: {self.events(EVENT_TRAINING_FAILED)[-1].get('detail')}"
                )
            detail = self.events(EVENT_TRAINING_COMPLETED)[-1].get("detail") or {}
            return _brief(detail)

        self.phase("training (schedule -> state machine -> CreateProjectVersion)", training)

        def promotion() -> str:
            self.wait_for(
                f"{EVENT_VERSION_PROMOTED} or {EVENT_VERSION_REJECTED}",
                lambda: bool(self.events(EVENT_VERSION_PROMOTED) or self.events(EVENT_VERSION_REJECTED)),
            )
            if not self.events(EVENT_VERSION_PROMOTED):
                raise PhaseFailedError(f"the version was rejected: {self.events(EVENT_VERSION_REJECTED)[-1]}")
            return _brief(self.events(EVENT_VERSION_PROMOTED)[-1].get("detail") or {})

        self.phase("evaluation gate and promotion", promotion)

        def inference() -> str:
            assert self.split is not None
            bucket = self._bucket()
            for image in self.split.held_out:
                s3.put_object(
                    Bucket=bucket, Key=f"{project}/{INFERENCE_FOLDER}/{image.filename}", Body=image.png
                )
            return (
                f"{len(self.split.held_out)} held-out images to s3://{bucket}/{project}/{INFERENCE_FOLDER}/"
            )

        self.phase("inference uploads (model stopped: images wait in the queue)", inference)

        def auto_start() -> str:
            self.wait_for(
                EVENT_MODEL_RUNNING,
                lambda: bool(self.events(EVENT_MODEL_RUNNING) or self.events(EVENT_MODEL_START_FAILED)),
            )
            if not self.events(EVENT_MODEL_RUNNING):
                raise PhaseFailedError(
                    f"the model did not start: {self.events(EVENT_MODEL_START_FAILED)[-1]}"
                )
            return _brief(self.events(EVENT_MODEL_RUNNING)[-1].get("detail") or {})

        self.phase("auto-start of the production version", auto_start)

        def detections() -> str:
            assert self.split is not None
            expected = len(self.split.held_out)
            self.wait_for(f"{expected} detections on SNS", lambda: len(self._held_out_results()) >= expected)
            results = self._held_out_results()
            correct = sum(1 for truth, result in results.values() if result.get("top_label") == truth)
            return f"{len(results)} detections published; {correct}/{len(results)} correct"

        self.phase("detections published on SNS", detections)

        def idle_stop() -> str:
            self.wait_for(
                EVENT_MODEL_STOPPED,
                self._model_stopped_last,
                timeout_s=self.options.phase_timeout_s + 60 * self.options.idle_minutes,
            )
            return f"stopped after {self.options.idle_minutes} idle minute(s)"

        self.phase(f"idle stop (idle_minutes={self.options.idle_minutes})", idle_stop)

    def _model_stopped_last(self) -> bool:
        """The project's latest model.* lifecycle event is model.stopped (it may have stopped and
        started again before)."""
        assert self.runtime is not None
        kinds = [
            body.get("type")
            for body in (published.json() for published in self.runtime.published)
            if isinstance(body, dict)
            and body.get("project") == self.options.project
            and str(body.get("type", "")).startswith("model.")
        ]
        return bool(kinds) and kinds[-1] == EVENT_MODEL_STOPPED

    # -- measurements ---------------------------------------------------------------------------
    def events(self, event_type: str) -> list[dict[str, Any]]:
        assert self.runtime is not None
        return project_events(self.runtime, self.options.project, event_type)

    def detections(self) -> list[dict[str, Any]]:
        assert self.runtime is not None
        return published_detections(self.runtime)

    def _summarize(self) -> None:
        assert self.runtime is not None
        self.report.summary = summarize(self.runtime, self.options, self.split)
        self.report.errors = list(self.runtime.errors)

    def _dataset_stats(self) -> dict[str, dict[str, Any]]:
        return dataset_stats(self.options.project)

    def _held_out_results(self) -> dict[str, tuple[str, dict[str, Any]]]:
        assert self.runtime is not None and self.split is not None
        return held_out_results(self.runtime, self.options.project, self.split)

    def _finish(self) -> DemoReport:
        self.report.total_seconds = time.monotonic() - self.started
        print_summary(self.report, self.say)
        return self.report


def _brief(detail: dict[str, Any]) -> str:
    """key=value pairs of an event's detail, without ARNs and nested values (readable on a line)."""
    items = [
        f"{k}={v}"
        for k, v in detail.items()
        if not isinstance(v, (dict, list)) and not str(v).startswith("arn:") and v is not None
    ]
    return ", ".join(items[:6]) or "done"


def run_demo(
    options: DemoOptions | None = None, out: TextIO | None = None, quiet: bool = False
) -> DemoReport:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    return Demo(options or DemoOptions(), out=out, quiet=quiet).run()
