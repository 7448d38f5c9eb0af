"""Offline waits follow the runtime's accelerated clock: an SQS message delay, the functions' clock
(lambdas.common.clock), and nothing changes at speed 1 or after the runtime is gone."""

from __future__ import annotations

import time

import boto3
from moto import mock_aws

from autopilot.local.runtime.accelerated import waits_on
from autopilot.local.schedules import SimulatedClock
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
