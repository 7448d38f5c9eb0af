"""Documented limits and boundaries, each written as the literal the documentation gives.

* UpdateDatasetEntries: Changes.GroundTruth is at most 5,242,880 bytes (botocore model
  `GroundTruthBlob` max; the API reference says 5 MB).
* Detection: an image waits at most 6 hours for the model, then its message fails (docs/serving.md).
* The evaluation gate (docs/training.md): F1 >= floor, and with a version in production
  F1 >= production F1 + margin and F1 > production F1; the floor applies in both cases.
"""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.common.production import ProductionRecord
from lambdas.detection.deferral import DeferralInfo, Requeuer, WaitedTooLong
from lambdas.ingestion import chunking
from lambdas.ingestion.lines import Line
from lambdas.ingestion.service import Flusher
from lambdas.training import gate

FIVE_MB = 5_242_880
SIX_HOURS = 21_600


def lines_of_total(total: int, line_bytes: int = 90_000) -> list[Line]:
    """Lines whose newline-joined payload is exactly `total` bytes."""
    lines: list[Line] = []
    remaining = total
    i = 0
    while remaining > 0:
        # Every line after the first costs one separator byte.
        separator = 1 if lines else 0
        text_bytes = min(line_bytes, remaining - separator)
        prefix = f'{{"source-ref":"s3://b/{i}.png","pad":"'
        text = prefix + "x" * (text_bytes - len(prefix) - 2) + '"}'
        lines.append(Line(f"s3://b/{i}.png", text))
        remaining -= text_bytes + separator
        i += 1
    assert chunking.payload_bytes(lines) == total
    return lines


# --- UpdateDatasetEntries: 5,242,880 bytes ------------------------------------------------------
def test_a_payload_of_exactly_5_242_880_bytes_is_one_update() -> None:
    chunks = list(chunking.pack(lines_of_total(FIVE_MB)))
    assert len(chunks) == 1
    assert len(chunking.encode(chunks[0])) == FIVE_MB


def test_one_byte_more_than_5_242_880_needs_a_second_update() -> None:
    chunks = list(chunking.pack(lines_of_total(FIVE_MB + 1)))
    assert len(chunks) == 2
    assert all(len(chunking.encode(chunk)) <= FIVE_MB for chunk in chunks)
    assert chunking.lower_bound(lines_of_total(FIVE_MB + 1)) == 2


def test_the_flusher_packs_to_5_242_880_bytes_unless_told_otherwise() -> None:
    assert Flusher.max_bytes == FIVE_MB


# --- detection: 6 hours of waiting ----------------------------------------------------------------
class RecordingSqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **request: Any) -> dict[str, Any]:
        self.sent.append(request)
        return {"MessageId": "m"}


@pytest.mark.parametrize("waited", [0, 60, SIX_HOURS - 1, SIX_HOURS])
def test_an_image_waits_up_to_6_hours(waited: float) -> None:
    sqs = RecordingSqs()
    info = DeferralInfo(count=3, first_at=1_000_000.0)
    Requeuer("https://queue", sqs_client=sqs).requeue("{}", info, now=1_000_000.0 + waited, delay_seconds=60)
    [sent] = sqs.sent
    assert sent["DelaySeconds"] == 60
    assert sent["MessageAttributes"]["autopilot_deferrals"]["StringValue"] == "4"


def test_after_6_hours_the_message_fails_towards_the_dlq() -> None:
    sqs = RecordingSqs()
    info = DeferralInfo(count=40, first_at=1_000_000.0)
    with pytest.raises(WaitedTooLong, match="limit 6 h"):
        Requeuer("https://queue", sqs_client=sqs).requeue(
            "{}", info, now=1_000_000.0 + SIX_HOURS + 1, delay_seconds=60
        )
    assert sqs.sent == []


# --- the evaluation gate's boundaries -------------------------------------------------------------
def production(f1: float) -> ProductionRecord:
    return ProductionRecord(
        project="digits",
        version_arn="arn:aws:rekognition:us-east-1:123456789012:project/digits/version/v1/1",
        version_name="v1",
        f1_score=f1,
        promoted_at="2026-11-21T18:00:00+00:00",
    )


@pytest.mark.parametrize("floor", [0.5, 0.7, 0.85, 0.9])
def test_an_f1_exactly_at_the_floor_is_promoted(floor: float) -> None:
    assert gate.evaluate(floor, production=None, f1_floor=floor, margin=0.0).promote


def test_an_f1_exactly_at_the_floor_beating_production_is_promoted() -> None:
    decision = gate.evaluate(0.7, production=production(0.6), f1_floor=0.7, margin=0.05)
    assert decision.promote


def test_below_the_floor_is_rejected_even_against_a_weaker_production() -> None:
    # Production is weaker (0.40), the candidate beats it by far more than the margin, but the
    # floor (0.70) is not met: the gate rejects.
    decision = gate.evaluate(0.65, production=production(0.40), f1_floor=0.7, margin=0.01)
    assert not decision.promote
    assert "below the floor" in decision.reason


@pytest.mark.parametrize(
    ("candidate", "promote"),
    [
        (0.86, True),  # exactly production + margin
        (0.8599, False),  # just under the margin
        (0.8601, True),
    ],
)
def test_the_margin_edge(candidate: float, promote: bool) -> None:
    decision = gate.evaluate(candidate, production=production(0.81), f1_floor=0.5, margin=0.05)
    assert decision.promote is promote
