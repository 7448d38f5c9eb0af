"""The local runtime derives its wiring from CDK definitions: notifications with prefix filters,
SQS event sources with partial batch failures and a DLQ, event rules, schedules, state machines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from autopilot.local.runtime import LocalRuntime, running_stack
from tests.local.wiring_stack import build_wiring_template


@pytest.fixture(scope="module")
def wiring_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_wiring_template(str(tmp_path_factory.mktemp("wiring")))


@pytest.fixture
def runtime(wiring_template: dict[str, Any]) -> Iterator[LocalRuntime]:
    # Fast clock: the 30 s visibility timeout becomes 0 s, the 5-minute rate 0.5 s.
    with running_stack(wiring_template, clock_speed=600, start_pump=False) as stack:
        yield stack


def _messages(runtime: LocalRuntime) -> list[Any]:
    return [p.json() for p in runtime.published]


def _bucket(runtime: LocalRuntime) -> str:
    return runtime.output("DataBucketName")


def test_upload_under_the_prefix_reaches_the_handler_and_others_do_not(runtime: LocalRuntime) -> None:
    # Given the provisioned stack
    s3 = boto3.client("s3")
    # When one object is put under the notification prefix and one elsewhere
    s3.put_object(Bucket=_bucket(runtime), Key="digits/train/seven/a b.png", Body=b"x")
    s3.put_object(Bucket=_bucket(runtime), Key="digits/inference/c.png", Body=b"x")
    # Then only the first is published by the consumer, with its key decoded
    assert runtime.run_until(
        lambda: {"key": "digits/train/seven/a b.png"} in _messages(runtime), timeout_s=30
    )
    runtime.run_until(lambda: False, timeout_s=1)
    assert {"key": "digits/inference/c.png"} not in _messages(runtime)
    consumer = [i for i in runtime.lambdas.invocations if "Consumer" in i.function_name]
    assert consumer and all(i.error is None for i in consumer)


def test_s3_notifications_carry_version_sequencer_and_etag(runtime: LocalRuntime) -> None:
    # Given a versioned bucket and the same key uploaded twice
    s3 = boto3.client("s3")
    bucket = _bucket(runtime)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    versions = [
        s3.put_object(Bucket=bucket, Key="digits/train/seven/same.png", Body=body)["VersionId"]
        for body in (b"first", b"second")
    ]

    def records() -> list[dict[str, Any]]:
        found = []
        for invocation in runtime.lambdas.invocations:
            for message in (invocation.event or {}).get("Records", []):
                body = json.loads(message.get("body", "{}"))
                found.extend(r["s3"]["object"] for r in body.get("Records", []) if isinstance(body, dict))
        return [o for o in found if o["key"].endswith("same.png")]

    assert runtime.run_until(lambda: len(records()) == 2, timeout_s=30)
    # Then each record names its version and ETag, and the later upload has the greater sequencer
    first, second = sorted(records(), key=lambda o: o["sequencer"])
    assert [first["versionId"], second["versionId"]] == versions
    assert first["eTag"] and first["eTag"] != second["eTag"]
    assert len(first["sequencer"]) == 18 and int(first["sequencer"], 16) > 0


def test_failed_items_are_retried_then_land_in_the_dead_letter_queue(runtime: LocalRuntime) -> None:
    # Given a consumer that reports keys containing "bad" as batch item failures (maxReceiveCount 2)
    s3 = boto3.client("s3")
    # When such an object arrives
    s3.put_object(Bucket=_bucket(runtime), Key="digits/train/x/bad.png", Body=b"x")
    # Then it is retried and finally moved to the DLQ by the redrive policy
    assert runtime.run_until(lambda: sum(runtime.dead_letter_depths().values()) == 1, timeout_s=30)
    mapping = runtime.mappings[0]
    assert mapping.batch_size == 5 and mapping.report_batch_item_failures


def test_event_rule_starts_the_state_machine_which_runs_the_real_handler(runtime: LocalRuntime) -> None:
    # Given the on-demand rule targeting the state machine with input path $.detail
    events = boto3.client("events")
    # When a matching event is put
    events.put_events(
        Entries=[
            {"Source": "wiring.test", "DetailType": "Double Requested", "Detail": json.dumps({"value": 4})}
        ]
    )

    # Then the state machine ran the doubler (with its template environment) and published its output
    def announced() -> bool:
        return any(isinstance(m, dict) and m.get("value") == 8 for m in _messages(runtime))

    assert runtime.run_until(announced, timeout_s=60)
    message = next(m for m in _messages(runtime) if isinstance(m, dict) and m.get("value") == 8)
    assert message["marker"] == "from-template"
    assert "SUCCEEDED" in runtime.executions.values()


def test_schedule_rule_fires_on_the_accelerated_clock(runtime: LocalRuntime) -> None:
    # Given a rate(5 minutes) rule with a constant input, at 600x
    (schedule,) = runtime.schedules
    assert schedule.expression == "rate(5 minutes)"
    # When time passes
    # Then it fires and the target gets the rule's constant input
    assert runtime.run_until(lambda: schedule.fired >= 1, timeout_s=20)
    assert runtime.run_until(
        lambda: any(i.event == {"value": 50} for i in runtime.lambdas.invocations), timeout_s=20
    )


def test_async_failures_follow_the_event_invoke_config(runtime: LocalRuntime) -> None:
    # Given a function with retry_attempts=0 and an SQS on-failure destination, behind a rule
    events = boto3.client("events")
    failures = runtime.output("FailuresQueueUrl")
    # When a matching event is put
    events.put_events(Entries=[{"Source": "wiring.test", "DetailType": "Fail Requested", "Detail": "{}"}])
    # Then it ran once (no retries) and the event went to the destination queue
    sqs = boto3.client("sqs")

    def delivered() -> bool:
        attributes = sqs.get_queue_attributes(
            QueueUrl=failures, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) == 1

    assert runtime.run_until(delivered, timeout_s=30)
    assert len([i for i in runtime.lambdas.invocations if "Failer" in i.function_name]) == 1


@pytest.mark.slow
def test_changing_the_prefix_in_the_definition_changes_local_behaviour(tmp_path: Any) -> None:
    # Given the same stack with the notification prefix changed in the CDK code
    template = build_wiring_template(str(tmp_path), prefix="cats/train/")
    with running_stack(template, clock_speed=600, start_pump=False) as runtime:
        s3 = boto3.client("s3")
        # When objects arrive under the old and the new prefix
        s3.put_object(Bucket=_bucket(runtime), Key="digits/train/seven/a.png", Body=b"x")
        s3.put_object(Bucket=_bucket(runtime), Key="cats/train/tabby/b.png", Body=b"x")
        # Then only the new prefix triggers the handler
        assert runtime.run_until(
            lambda: {"key": "cats/train/tabby/b.png"} in _messages(runtime), timeout_s=30
        )
        runtime.run_until(lambda: False, timeout_s=1)
        assert {"key": "digits/train/seven/a.png"} not in _messages(runtime)
