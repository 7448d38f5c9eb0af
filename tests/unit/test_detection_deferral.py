"""Deferral: re-sent with a delay and counted, bounded in time; start requests on EventBridge."""

from __future__ import annotations

import json
import random

import boto3
import pytest
from botocore.stub import Stubber

from lambdas.detection.deferral import (
    MAX_WAIT_SECONDS,
    ControlRequester,
    DeferralInfo,
    Requeuer,
    WaitedTooLong,
    throttle_delay,
)

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/detection"


def test_attributes_from_a_lambda_sqs_record() -> None:
    info = DeferralInfo.from_attributes(
        {
            "autopilot_deferrals": {"stringValue": "3", "dataType": "Number"},
            "autopilot_first_deferred_at": {"stringValue": "100.5", "dataType": "Number"},
        }
    )
    assert info == DeferralInfo(count=3, first_at=100.5)
    assert DeferralInfo.from_attributes({}) == DeferralInfo()


def test_requeue_sends_the_same_body_with_delay_and_counters() -> None:
    client = boto3.client("sqs", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response(
            "send_message",
            {"MessageId": "m2"},
            {
                "QueueUrl": URL,
                "MessageBody": "{}",
                "DelaySeconds": 900,  # capped at the SQS maximum
                "MessageAttributes": {
                    "autopilot_deferrals": {"DataType": "Number", "StringValue": "1"},
                    "autopilot_first_deferred_at": {"DataType": "Number", "StringValue": "50.000"},
                },
            },
        )
        Requeuer(URL, client).requeue("{}", DeferralInfo(), now=50.0, delay_seconds=5000)
        stub.assert_no_pending_responses()


def test_waiting_is_bounded() -> None:
    info = DeferralInfo(count=40, first_at=0.0)
    with pytest.raises(WaitedTooLong, match="DLQ"):
        Requeuer(URL, object()).requeue("{}", info, now=MAX_WAIT_SECONDS + 1, delay_seconds=60)


def test_throttle_backoff_grows_and_is_capped() -> None:
    rng = random.Random(1)
    delays = [throttle_delay(count, rng) for count in range(10)]
    assert delays[0] < delays[3] < delays[5]
    assert max(delays) <= 305


def test_start_request_event() -> None:
    client = boto3.client("events", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response(
            "put_events",
            {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]},
            {
                "Entries": [
                    {
                        "Source": "custom-labels-autopilot",
                        "DetailType": "Autopilot Model Control Requested",
                        "Detail": json.dumps({"project": "digits", "action": "auto", "trigger": "detection"}),
                        "EventBusName": "default",
                    }
                ]
            },
        )
        stub.add_response("put_events", {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "x"}]})
        requester = ControlRequester("default", client)
        requester.request_start("digits")
        with pytest.raises(RuntimeError, match="digits"):
            requester.request_start("digits")
