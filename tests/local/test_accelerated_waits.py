"""Offline waits follow the runtime's accelerated clock: an SQS message delay, the functions' clock
(lambdas.common.clock), Step Functions' `$$.State.EnteredTime`, and nothing changes at speed 1 or
after the runtime is gone."""

from __future__ import annotations

import datetime as datetime_module
import json
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from autopilot.local.runtime import accelerated
from autopilot.local.runtime.accelerated import waits_on
from autopilot.local.schedules import SimulatedClock
from autopilot.local.stepfunctions import run_execution
from lambdas.common import clock as shared_clock


def _receive(sqs, url: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])


def test_a_delayed_message_arrives_after_the_delay_on_the_runtime_clock() -> None:
    clock = SimulatedClock(speed=1000.0)
    with mock_aws(), waits_on(clock):
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="delays")["QueueUrl"]
        # Given a message delayed by the longest delay SQS allows (900 s, 0.9 s at x1000)
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=900)
        # Then it is not delivered at once, and it is well within 900 real seconds
        assert _receive(sqs, url) == []
        received: list[dict] = []
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            time.sleep(0.1)
            received = _receive(sqs, url)
        assert [message["Body"] for message in received] == ["later"]


def test_the_functions_clock_is_the_runtime_clock_while_it_runs() -> None:
    clock = SimulatedClock(speed=3600.0)
    with waits_on(clock):
        time.sleep(0.05)
        # 0.05 real seconds are three simulated minutes: far ahead of the wall clock
        assert shared_clock.now() - time.time() > 60
        assert abs(shared_clock.now() - clock.now().timestamp()) < 60
    assert abs(shared_clock.now() - time.time()) < 5


def test_at_speed_one_nothing_is_patched() -> None:
    with waits_on(SimulatedClock(speed=1.0)):
        assert abs(shared_clock.now() - time.time()) < 5


def _entered_time(clock: SimulatedClock) -> float:
    """Runs a one-state machine that returns its `$$.State.EnteredTime`, as epoch seconds."""
    definition = {
        "StartAt": "Stamp",
        "States": {"Stamp": {"Type": "Pass", "Parameters": {"at.$": "$$.State.EnteredTime"}, "End": True}},
    }
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), waits_on(clock):  # type: ignore[arg-type]
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="stamp",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/machine",
        )["stateMachineArn"]
        result = run_execution(sfn, arn, {}, timeout_s=60)
    assert result.succeeded and isinstance(result.output, dict)
    return datetime.fromisoformat(str(result.output["at"]).replace("Z", "+00:00")).timestamp()


def test_step_functions_entered_time_is_on_the_runtime_clock() -> None:
    # Given a runtime clock that starts a year ahead of the wall clock and runs x1000
    clock = SimulatedClock(speed=1000.0, start=datetime.now(UTC) + timedelta(days=365))
    before = clock.now().timestamp()
    # When a state machine stamps a state with $$.State.EnteredTime
    entered = _entered_time(clock)
    # Then the stamp is the runtime's time, not the wall clock's (which is a year behind)
    assert before <= entered <= clock.now().timestamp()
    assert entered - time.time() > 300 * 86400


def test_a_moto_that_stamps_entered_time_elsewhere_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a moto whose state module no longer stamps with its `datetime` module
    import importlib

    module = importlib.import_module(accelerated._STATE_MODULE)
    monkeypatch.setattr(module, "datetime", object())
    # Then the runtime refuses to start rather than run Step Functions on the wall clock
    with (
        pytest.raises(RuntimeError, match="EnteredTime would not follow the local clock"),
        waits_on(SimulatedClock(speed=10.0)),
    ):
        pass
    # And the functions' clock was put back
    assert abs(shared_clock.now() - time.time()) < 5


def test_handler_compute_runs_at_real_pace_on_the_clock() -> None:
    clock = SimulatedClock(speed=1000.0)
    # Given 0.2 real seconds inside a handler (real pace), the clock moves about 0.2 s
    before = clock.now().timestamp()
    with clock.real_pace():
        with clock.real_pace():  # nested (a handler that invokes another) counts once
            time.sleep(0.1)
        time.sleep(0.1)
        inside = clock.now().timestamp() - before
    assert 0.2 <= inside < 5
    # And outside it runs 1000 times faster again
    time.sleep(0.1)
    assert clock.now().timestamp() - before - inside >= 100


def test_nested_runtimes_each_stamp_with_their_clock_and_restore_the_outer_one() -> None:
    import importlib

    module = importlib.import_module(accelerated._STATE_MODULE)
    outer, inner = SimulatedClock(speed=10.0), SimulatedClock(speed=20.0)
    with accelerated.entered_time_on(outer):
        stamped_by_outer = module.datetime
        with accelerated.entered_time_on(inner):
            assert module.datetime is not stamped_by_outer
        assert module.datetime is stamped_by_outer
    assert module.datetime is datetime_module
