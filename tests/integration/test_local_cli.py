"""Every operator command against the local stack: the real template, handlers, state machines
and the local Custom Labels engine, reached through the same code paths as on AWS."""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from autopilot.cli import main
from autopilot.local.demo import DemoOptions, demo_context
from autopilot.local.runtime import LocalRuntime, running_stack
from autopilot.local.sample_data import demo_split
from autopilot.local.serve import outputs, write_state
from autopilot.local.template import synth_template
from lambdas.common.constants import EVENT_ENTRIES_APPLIED, EVENT_VERSION_PROMOTED
from lambdas.common.events import LifecyclePublisher

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-stack")]

PROJECT = "digits"
LABELS = ("zero", "one")
SPEED = 120.0


def cli(*args: str) -> tuple[int, Any]:
    """Runs `autopilot <args> --json`; returns the exit code and the parsed output (or the text)."""
    buffer, errors = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(errors):
        try:
            code = main([*args, "--json"], out=buffer)
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    text = buffer.getvalue()
    try:
        return code, json.loads(text)
    except ValueError:
        return code, text + errors.getvalue()


def _events(runtime: LocalRuntime, event_type: str) -> list[dict[str, Any]]:
    bodies = [p.json() for p in runtime.published]
    return [
        b
        for b in bodies
        if isinstance(b, dict) and b.get("type") == event_type and b.get("project") == PROJECT
    ]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    from autopilot.engine import EngineConfig, EngineServer

    state_dir = tmp_path_factory.mktemp("local-stack")
    template = synth_template(demo_context(DemoOptions(speed=SPEED)), outdir=str(state_dir / "cdk.out"))
    engine = EngineServer(EngineConfig(time_scale=1 / SPEED))
    url = engine.start()
    saved = os.environ.get("AUTOPILOT_STACK_FILE")
    try:
        with running_stack(
            template,
            clock_speed=SPEED,
            extra_environment={"AWS_ENDPOINT_URL_REKOGNITION": url},
            capture_output=True,
        ) as runtime:
            runtime.pause_schedules("Training")  # the tests ask for trainings themselves
            _, stack_file = write_state(runtime, url, Path(state_dir))
            os.environ["AUTOPILOT_STACK_FILE"] = str(stack_file)
            split = demo_split(8, 3, 1, labels=LABELS)
            s3 = boto3.client("s3")
            bucket = outputs(runtime)["AUTOPILOT_BUCKET"]
            for folder, images in (("train", split.train), ("test", split.test)):
                for image in images:
                    s3.put_object(
                        Bucket=bucket,
                        Key=f"{PROJECT}/{folder}/{image.label}/{image.filename}",
                        Body=image.png,
                    )
            runtime.held_out = split.held_out  # type: ignore[attr-defined]
            assert runtime.run_until(lambda: len(_events(runtime, EVENT_ENTRIES_APPLIED)) >= 2, timeout_s=120)
            code, output = cli("train", PROJECT, "--force", "--wait", "--interval", "0.5", "--timeout", "180")
            assert code == 0, output
            assert runtime.run_until(lambda: bool(_events(runtime, EVENT_VERSION_PROMOTED)), timeout_s=30)
            yield runtime
    finally:
        engine.stop(wait_for_training=10)
        if saved is None:
            os.environ.pop("AUTOPILOT_STACK_FILE", None)
        else:
            os.environ["AUTOPILOT_STACK_FILE"] = saved


def test_status_lists_datasets_versions_and_production(stack: LocalRuntime) -> None:
    # When
    code, output = cli("status", "--project", PROJECT)
    # Then
    assert code == 0
    (project,) = output["projects"]
    assert project["exists"] and {d["type"] for d in project["datasets"]} == {"TRAIN", "TEST"}
    train = next(d for d in project["datasets"] if d["type"] == "TRAIN")
    assert train["LabeledEntries"] == 16 and train["TotalLabels"] == 2
    production = [v for v in project["versions"] if v["production"]]
    assert len(production) == 1 and production[0]["f1"] is not None
    assert project["production"]["version_name"] == production[0]["name"]


def test_status_of_all_configured_projects(stack: LocalRuntime) -> None:
    code, output = cli("status")
    assert code == 0
    names = {p["project"]: p["exists"] for p in output["projects"]}
    assert names == {"digits": True, "moderation": False}


def test_entries_with_filters_and_pagination(stack: LocalRuntime) -> None:
    # Given 16 TRAIN entries, 8 per label
    # When filtered by label, paged by 3, and followed to the end
    code, zeros = cli("entries", PROJECT, "--label", "zero", "--all")
    code_page, page = cli("entries", PROJECT, "--max-results", "3")
    code_next, second = cli("entries", PROJECT, "--max-results", "3", "--next-token", page["next_token"])
    code_errors, with_errors = cli("entries", PROJECT, "--has-errors")
    code_source, by_source = cli(
        "entries", PROJECT, "--source-ref-contains", "/train/one/", "--all", "--labeled"
    )
    # Then
    assert {code, code_page, code_next, code_errors, code_source} == {0}
    assert zeros["count"] == 8
    assert page["count"] == 3 and page["next_token"]
    refs = {e["source-ref"] for e in page["entries"]} | {e["source-ref"] for e in second["entries"]}
    assert len(refs) == 6
    assert with_errors["count"] == 0
    assert by_source["count"] == 8 and all("/train/one/" in e["source-ref"] for e in by_source["entries"])


def test_labels_and_usage_errors(stack: LocalRuntime) -> None:
    code, output = cli("labels", PROJECT, "--dataset", "test")
    assert code == 0
    assert {row["label"]: row["entries"] for row in output["labels"]} == {"zero": 3, "one": 3}
    # Unknown project: not found; out-of-range page size: usage error
    assert cli("labels", "nosuch")[0] == 3
    assert cli("entries", PROJECT, "--max-results", "500")[0] == 2


def test_start_detect_stop(stack: LocalRuntime, tmp_path: Path) -> None:
    image = stack.held_out[0]  # type: ignore[attr-defined]
    path = tmp_path / image.filename
    path.write_bytes(image.png)
    # Given the model is stopped, detect says how to start it
    assert cli("detect", PROJECT, str(path))[0] == 1
    # When started, a local file is classified, then the model is stopped
    code, started = cli("start", PROJECT, "--wait", "--interval", "0.5", "--timeout", "120")
    assert code == 0 and started["status"] == "RUNNING"
    code, detected = cli("detect", PROJECT, str(path), "--min-confidence", "0")
    assert code == 0 and detected["labels"]
    assert detected["labels"][0]["name"] in LABELS
    code, stopped = cli("stop", PROJECT, "--wait", "--interval", "0.5", "--timeout", "120")
    assert code == 0 and stopped["status"] == "STOPPED"
    assert cli("detect", PROJECT, str(tmp_path / "missing.png"))[0] == 3
    assert cli("auto", PROJECT)[0] == 0


def test_promote_and_rollback(stack: LocalRuntime) -> None:
    # Given a second trained version
    code, trained_output = cli("train", PROJECT, "--force", "--wait", "--interval", "0.5", "--timeout", "180")
    assert code in (0, 1), trained_output
    _, status = cli("status", "--project", PROJECT)
    versions = status["projects"][0]["versions"]
    trained = [v for v in versions if v["f1"] is not None]
    assert len(trained) >= 2
    production = next(v for v in versions if v["production"])
    other = next(v for v in trained if not v["production"])
    # When the other one is promoted, then rolled back
    code, promoted = cli("promote", PROJECT, other["name"])
    assert code == 0 and promoted["changed"]
    _, after = cli("status", "--project", PROJECT)
    assert after["projects"][0]["production"]["version_name"] == other["name"]
    code, rolled = cli("rollback", PROJECT)
    # Then production is back where it was
    assert code == 0 and rolled["version"] == production["name"]
    _, final = cli("status", "--project", PROJECT)
    assert final["projects"][0]["production"]["version_name"] == production["name"]
    assert cli("promote", PROJECT, "no-such-version")[0] == 3


def test_tail_prints_lifecycle_events(stack: LocalRuntime) -> None:
    # Given a lifecycle event published while tail is following
    topic = outputs(stack)["AUTOPILOT_LIFECYCLE_TOPIC_ARN"]

    def publish_once_subscribed() -> None:
        # Publish as soon as tail's queue is subscribed to the topic (bounded wait, no fixed sleep).
        sns = boto3.client("sns")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic).get("Subscriptions", [])
            if any(":autopilot-tail-" in s["Endpoint"] for s in subscriptions):
                LifecyclePublisher(topic, sns_client=sns).publish("test.ping", PROJECT, n=1)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=publish_once_subscribed)
    thread.start()
    # When tail runs with a project filter
    code, output = cli("tail", "--project", PROJECT, "--max-events", "1", "--timeout", "20")
    thread.join()
    # Then it printed the event as JSON and cleaned up its queue
    assert code == 0
    assert output["type"] == "test.ping" and output["detail"] == {"n": 1}
    queues = boto3.client("sqs").list_queues(QueueNamePrefix="autopilot-tail-").get("QueueUrls", [])
    assert queues == []
