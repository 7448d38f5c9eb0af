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
from lambdas.common.constants import EVENT_ENTRIES_APPLIED, EVENT_ENTRIES_REJECTED, EVENT_VERSION_PROMOTED
from lambdas.common.events import LifecyclePublisher
from lambdas.serving.usage import parse_time

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


def cli_text(*args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    code = main(list(args), out=buffer)
    return code, buffer.getvalue()


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
    # with the per-label figures of its evaluation summary (3 TEST images per label)
    labels = {row["label"]: row for row in production[0]["labels"]}
    assert set(labels) == set(LABELS)
    assert all(row["test_images"] == 3 and 0 <= row["f1"] <= 1 for row in labels.values())
    code, text = cli_text("status", "--project", PROJECT)
    assert code == 0 and "label zero" in text and "threshold" in text


def test_status_finds_every_resource_through_the_stack_outputs(stack: LocalRuntime) -> None:
    # Given the stack file the local stack wrote, which holds the outputs as DescribeStacks would
    stack_file = json.loads(Path(os.environ["AUTOPILOT_STACK_FILE"]).read_text(encoding="utf-8"))
    # When
    code, output = cli("status", "--project", PROJECT)
    # Then every declared output is found, each resolved to the provisioned resource
    assert code == 0
    found = output["stack"]["outputs"]
    assert found == stack_file["outputs"] == stack.outputs()
    assert set(found) == {
        "DataBucketName",
        "StateTableName",
        "SettingsParameterName",
        "LifecycleTopicArn",
        "DetectionsTopicArn",
        "TrainingStateMachineArn",
        "ModelControlStateMachineArn",
        "IngestionQueueUrl",
        "IngestionDeadLetterQueueUrl",
        "DetectionQueueUrl",
        "DetectionDeadLetterQueueUrl",
        "TrainingTriggerDeadLetterQueueUrl",
        "ModelControlDeadLetterQueueUrl",
    }
    assert found["DataBucketName"] in {b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]}
    machines = boto3.client("stepfunctions").list_state_machines()["stateMachines"]
    assert {found["TrainingStateMachineArn"], found["ModelControlStateMachineArn"]} <= {
        m["stateMachineArn"] for m in machines
    }
    # and the queues answered: no dead letters in a healthy run
    waiting = output["stack"]["messages_waiting"]
    assert waiting["IngestionDeadLetterQueueUrl"] == 0 and waiting["DetectionDeadLetterQueueUrl"] == 0


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


def test_report_of_the_production_version(stack: LocalRuntime, tmp_path: Path) -> None:
    # Given an upload that ingestion rejects (not an image), kept among the last days' rejections
    bucket = outputs(stack)["AUTOPILOT_BUCKET"]
    boto3.client("s3").put_object(Bucket=bucket, Key=f"{PROJECT}/train/zero/notes.png", Body=b"not an image")
    assert stack.run_until(lambda: bool(_events(stack, EVENT_ENTRIES_REJECTED)), timeout_s=60)
    # When the report of the production version is written
    out = tmp_path / "report.html"
    code, written = cli("report", PROJECT, "--out", str(out), "--max-thumbnails", "50")
    assert code == 0 and written["out"] == str(out)
    page = out.read_text(encoding="utf-8")
    # Then it is self-contained: no external fetch, charts inline, bounded in size
    import re

    assert "<svg" in page and "<script" not in page and "<link" not in page
    assert not re.search(r"""(src|href)=["']https?:""", page) and "url(http" not in page
    assert len(page.encode()) < 3_000_000
    # The per-label rows are the version's evaluation summary (what DescribeProjectVersions points at)
    _, status = cli("status", "--project", PROJECT)
    production = status["projects"][0]["production"]["version_name"]
    rekognition = boto3.client("rekognition")
    project_arn = rekognition.describe_projects(ProjectNames=[PROJECT])["ProjectDescriptions"][0][
        "ProjectArn"
    ]
    (described,) = rekognition.describe_project_versions(ProjectArn=project_arn, VersionNames=[production])[
        "ProjectVersionDescriptions"
    ]
    summary_object = described["EvaluationResult"]["Summary"]["S3Object"]
    s3 = boto3.client("s3")
    summary = json.loads(
        s3.get_object(Bucket=summary_object["Bucket"], Key=summary_object["Name"])["Body"].read()
    )
    rows = _table_rows(page, "labels")
    assert {row[0] for row in rows} == {r["Label"] for r in summary["LabelEvaluationResults"]}
    for result in summary["LabelEvaluationResults"]:
        row = next(r for r in rows if r[0] == result["Label"])
        assert float(row[1]) == pytest.approx(result["Metrics"]["F1Score"], abs=5e-4)
        assert float(row[4]) == pytest.approx(result["Metrics"]["Threshold"], abs=5e-4)
    # The confusion matrix sums to the size of the test set
    testing = described["TestingDataResult"]["Output"]["Assets"][0]["GroundTruthManifest"]["S3Object"]
    test_lines = s3.get_object(Bucket=testing["Bucket"], Key=testing["Name"])["Body"].read().splitlines()
    assert sum(int(row[2]) for row in _table_rows(page, "confusion")) == len(test_lines) == 6
    # Every wrongly judged test image (up to the cap) has its thumbnail
    wrong = [
        json.loads(line)["source-ref"]
        for line in test_lines
        if '"is-false-positive":true' in line.decode() or '"is-false-negative":true' in line.decode()
    ]
    for ref in wrong:
        assert f"data-source-ref='{ref}'><img src='data:image/png;base64," in page
    # The rejection is listed with its key
    assert any(
        row[1] == f"{PROJECT}/train/zero/notes.png" and row[2] for row in _table_rows(page, "rejections")
    )
    # The starts and stops of the tests above, each with the controller's reason
    transitions = _table_rows(page, "transitions")
    assert {row[1] for row in transitions} == {"started", "stopped"}
    assert all(row[4] not in ("", "-", "requested") for row in transitions), transitions
    # And a real browser renders its charts
    _screenshot_shows_a_chart(out, tmp_path / "report.png")


def _table_rows(page: str, table_id: str) -> list[list[str]]:
    import re

    table = page.split(f"<table id='{table_id}'>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table)[1:]  # after the header
    return [[re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td>(.*?)</td>", row)] for row in rows]


def _screenshot_shows_a_chart(page: Path, png: Path) -> None:
    """Headless Chromium takes a screenshot; the charts' bar colour must cover a visible area."""
    import shutil
    import subprocess

    import numpy as np
    from PIL import Image

    browser = shutil.which("chromium-headless-shell") or shutil.which("chromium")
    if browser is None:
        if os.environ.get("CI"):
            raise AssertionError("CI must have headless Chromium (.ci/run installs chromium-headless-shell)")
        pytest.skip("no headless Chromium here (apt-get install chromium-headless-shell)")
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={png}",
            "--window-size=1200,2400",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with Image.open(png) as shot:
        pixels = np.asarray(shot.convert("RGB"), dtype=np.int16)
        bar_colour = np.array([0x1F, 0x77, 0xB4], dtype=np.int16)  # the charts' bar colour
        bars = int((np.abs(pixels - bar_colour) < 12).all(axis=-1).sum())
    assert bars > 2000, f"no chart rendered in {png} ({bars} pixels of the bar colour)"


# ---------------------------------------------------------------------------------------------
# Lifecycle commands: cost, queues and redrive, dataset export/reset/import/copy, project delete.
# They run last in this module: reset and delete change what the tests above read.
# ---------------------------------------------------------------------------------------------
def test_cost_of_a_scripted_start_stop_sequence(stack: LocalRuntime) -> None:
    # Given a start and a stop of the production version (after those of the tests above)
    assert cli("start", PROJECT, "--wait", "--interval", "0.5", "--timeout", "120")[0] == 0
    time.sleep(1.0)
    assert cli("stop", PROJECT, "--wait", "--interval", "0.5", "--timeout", "120")[0] == 0
    assert cli("auto", PROJECT)[0] == 0

    # The expectation comes from the lifecycle events (not the ledger the command reads): every
    # model.running until the next model.stopped, times the units it was started with (1 here).
    def events(kind: str) -> list[dict[str, Any]]:
        return [
            b for b in (p.json() for p in stack.published) if isinstance(b, dict) and b.get("type") == kind
        ]

    assert stack.run_until(lambda: len(events("model.stopped")) == len(events("model.running")), timeout_s=30)
    running, stopped = events("model.running"), events("model.stopped")
    assert len(running) >= 1
    expected = sum(
        (parse_time(stop["time"]) - parse_time(start["time"])) / 3600
        for start, stop in zip(running, stopped, strict=True)
    )
    # When
    code, output = cli("cost", "--project", PROJECT, "--since", "1", "--price-per-iu-hour", "4")
    # Then the IU-hours match within the real time between the state that stamps the ledger and the
    # state that publishes the event, which the local clock stretches by its speed: up to about one
    # real second for both ends of an interval on a loaded 2-core machine (SPEED x 1 s simulated)
    assert code == 0
    (report,) = output["projects"]
    assert report["iu_hours"] == pytest.approx(expected, abs=SPEED * 1.0 / 3600)
    assert report["iu_usd"] == pytest.approx(4 * report["iu_hours"])
    assert len(report["intervals"]) == len(running) and not any(
        i["still_running"] for i in report["intervals"]
    )
    assert report["training_hours"] >= 0 and report["trainings"]  # the versions trained above
    assert report["cloudwatch_iu_hours"] is None  # no service metrics offline


def test_queues_show_a_dead_letter_and_redrive_returns_it_to_work(stack: LocalRuntime) -> None:
    # Given a real upload notification that ended in the ingestion dead-letter queue: the queue's
    # trigger is paused, the notification taken from the queue and put in its DLQ
    mapping = next(m for m in stack.mappings if "Ingestion" in m.function_name)
    sqs = boto3.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=mapping.queue_url, AttributeNames=["RedrivePolicy"])
    dlq_arn = json.loads(attributes["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"]
    dlq_url = sqs.get_queue_url(QueueName=dlq_arn.rsplit(":", 1)[1])["QueueUrl"]
    image = stack.held_out[1]  # type: ignore[attr-defined]
    key = f"{PROJECT}/train/{image.label}/redriven-{image.filename}"
    mapping.enabled = False
    try:
        boto3.client("s3").put_object(Bucket=outputs(stack)["AUTOPILOT_BUCKET"], Key=key, Body=image.png)
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while not any(key.split("/")[-1] in m["Body"] for m in messages) and time.monotonic() < deadline:
            messages += sqs.receive_message(QueueUrl=mapping.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
        notification = next(m for m in messages if key.split("/")[-1] in m["Body"])
        sqs.send_message(QueueUrl=dlq_url, MessageBody=notification["Body"])
        for message in messages:
            sqs.delete_message(QueueUrl=mapping.queue_url, ReceiptHandle=message["ReceiptHandle"])
    finally:
        mapping.enabled = True
    # When the operator looks at the queues
    code, shown = cli("queues", "--project", PROJECT)
    assert code == 0
    dead = next(q for q in shown["queues"] if q["url"] == dlq_url)
    assert dead["visible"] == 1 and dead["dead_letter_of"] == mapping.queue_url.rsplit("/", 1)[1]
    assert shown["staged"] == {PROJECT: {}}
    # And redrives the ingestion queue's dead letters
    code, moved = cli("redrive", "ingestion")
    # Then the message is back, gets ingested, and the DLQ is empty
    assert code == 0 and moved["moved"] == 1
    arn = boto3.client("rekognition").describe_projects(ProjectNames=[PROJECT])["ProjectDescriptions"][0]
    train = next(d["DatasetArn"] for d in arn["Datasets"] if d["DatasetType"] == "TRAIN")

    def ingested() -> bool:
        entries = boto3.client("rekognition").list_dataset_entries(
            DatasetArn=train, SourceRefContains="redriven-"
        )["DatasetEntries"]
        return len(entries) == 1

    assert stack.run_until(ingested, timeout_s=60)
    assert (
        sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
        == "0"
    )
    assert cli("redrive", "no-such-queue")[0] == 3


def test_export_reset_import_gives_back_the_same_entries(stack: LocalRuntime, tmp_path: Path) -> None:
    bucket = outputs(stack)["AUTOPILOT_BUCKET"]
    # Given the TEST dataset exported to a file and to S3
    code, exported = cli("dataset", "export", PROJECT, "test", "--to", str(tmp_path / "test.manifest"))
    assert code == 0 and exported["entries"] == 6
    assert cli("dataset", "export", PROJECT, "test", "--to", f"s3://{bucket}/backups/test.manifest")[0] == 0
    before = {
        json.loads(line)["source-ref"]: json.loads(line) for line in (tmp_path / "test.manifest").open()
    }
    # When reset (refused without --yes) and imported again
    assert cli("dataset", "reset", PROJECT, "test")[0] == 2
    code, reset = cli("dataset", "reset", PROJECT, "test", "--yes", "--interval", "0.2")
    assert code == 0 and any(step.startswith("deleted") for step in reset["steps"])
    code, emptied = cli("entries", PROJECT, "--dataset", "test", "--all")
    assert code == 0 and emptied["count"] == 0
    code, imported = cli(
        "dataset", "import", PROJECT, "test", "--manifest", f"s3://{bucket}/backups/test.manifest"
    )
    assert code == 0 and imported["mode"] == "ingested" and imported["lines"] == 6

    def restored() -> bool:
        return cli("entries", PROJECT, "--dataset", "test", "--all")[1]["count"] == 6

    # Then the same entries (same source-refs and labels) are back
    assert stack.run_until(restored, timeout_s=90)
    after = {e["source-ref"]: e for e in cli("entries", PROJECT, "--dataset", "test", "--all")[1]["entries"]}
    assert set(after) == set(before)
    for ref, line in before.items():
        labels = {v["class-name"] for k, v in line.items() if k.endswith("-metadata") and "class-name" in v}
        assert labels == {
            v["class-name"] for k, v in after[ref].items() if k.endswith("-metadata") and "class-name" in v
        }
    assert cli("dataset", "import", PROJECT, "test", "--manifest", "not-a-url")[0] == 2


def test_copy_then_delete_a_project_with_a_running_model_and_three_versions(stack: LocalRuntime) -> None:
    rekognition = boto3.client("rekognition")
    bucket = outputs(stack)["AUTOPILOT_BUCKET"]
    # Given a project made of copies of the digits datasets, three trained versions, one running
    for dataset in ("train", "test"):
        code, copied = cli("dataset", "copy", "attic", dataset, "--from", PROJECT, "--interval", "0.2")
        assert code == 0 and copied["stats"]["TotalEntries"] > 0
    assert cli("dataset", "copy", "attic", "train", "--from", PROJECT)[0] == 1  # exists already
    project_arn = rekognition.describe_projects(ProjectNames=["attic"])["ProjectDescriptions"][0][
        "ProjectArn"
    ]
    versions = [
        rekognition.create_project_version(
            ProjectArn=project_arn,
            VersionName=f"v{n}",
            OutputConfig={"S3Bucket": bucket, "S3KeyPrefix": "attic/training-output"},
        )["ProjectVersionArn"]
        for n in range(3)
    ]

    def statuses() -> list[str]:
        described = rekognition.describe_project_versions(ProjectArn=project_arn)[
            "ProjectVersionDescriptions"
        ]
        return [v["Status"] for v in described]

    assert stack.run_until(lambda: statuses().count("TRAINING_COMPLETED") == 3, timeout_s=180), statuses()
    rekognition.start_project_version(ProjectVersionArn=versions[0], MinInferenceUnits=1)
    assert stack.run_until(lambda: "RUNNING" in statuses(), timeout_s=120), statuses()
    # When the project is deleted
    code, deleted = cli("project", "delete", "attic", "--yes", "--interval", "0.2", "--timeout", "300")
    # Then every step is reported and nothing is left
    assert code == 0, deleted
    assert "stopped v0" in deleted["steps"]
    assert sum(step.startswith("deleted version") for step in deleted["steps"]) == 3
    assert "deleted project attic" in deleted["steps"]
    assert rekognition.describe_projects(ProjectNames=["attic"])["ProjectDescriptions"] == []
    # And a second run is a no-op that says so
    code, again = cli("project", "delete", "attic", "--yes")
    assert code == 0 and again["steps"][0] == "project attic does not exist in Rekognition"
    assert cli("project", "delete", "attic")[0] == 2  # --yes is required
