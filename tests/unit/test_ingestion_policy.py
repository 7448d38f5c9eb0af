"""When ingestion asks for a flush again, and how long a flush may run."""

from __future__ import annotations

from lambdas.ingestion.policy import (
    flush_deadline,
    flush_request,
    flush_retry_delay,
    is_flush_request,
    request_delay,
)


def test_a_flush_keeps_a_fifth_of_the_remaining_time_but_at_most_a_minute() -> None:
    assert flush_deadline(1000.0, 100.0) == 1080.0
    assert flush_deadline(1000.0, 900.0) == 1840.0


def test_a_deferred_flush_waits_for_the_backoff_when_there_is_one() -> None:
    assert flush_retry_delay(None, 20) == 20
    assert flush_retry_delay(240, 20) == 240
    assert flush_retry_delay(0, 20) == 0


def test_delays_stay_within_what_sqs_accepts() -> None:
    # SendMessage DelaySeconds: 0 to 900 seconds (Amazon SQS API Reference).
    assert [request_delay(d) for d in (-5, 0, 30, 900, 5000)] == [0, 0, 30, 900, 900]


def test_a_flush_request_names_its_dataset_and_is_recognized() -> None:
    body = flush_request("digits", "TRAIN")
    assert body == {"type": "autopilot.ingestion.flush", "project": "digits", "dataset_type": "TRAIN"}
    assert is_flush_request(body)
    assert not is_flush_request({"Records": []})
