"""Exact results of the core domain modules (windows, policy, gate, chunking, deferral, retention):
whole values and full messages compared, boundaries on both sides. Written against the mutation
run (`make mutation`, docs/testing.md): each test pins down behaviour a small code change would
otherwise alter unnoticed."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.common import aws
from lambdas.common.production import ProductionRecord
from lambdas.common.settings import ServingWindow
from lambdas.detection.deferral import (
    ControlRequester,
    DeferralInfo,
    Requeuer,
    WaitedTooLong,
    throttle_delay,
)
from lambdas.ingestion import chunking
from lambdas.ingestion.lines import Line
from lambdas.serving import policy
from lambdas.serving.policy import (
    Action,
    Decision,
    Desired,
    Observation,
    Override,
    Policy,
    ServingState,
)
from lambdas.serving.windows import Cron, CronError, in_window, parse_cron, validate_windows
from lambdas.training import gate, retention
from lambdas.training.rekognition import VersionInfo

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


# --- windows: parsing ---------------------------------------------------------------------------
def test_a_weekday_cron_parses_to_its_values() -> None:
    assert parse_cron("cron(0 8 ? * MON-FRI *)") == Cron(
        expression="cron(0 8 ? * MON-FRI *)",
        minutes=(0,),
        hours=(8,),
        days_of_month=None,
        months=None,
        days_of_week=frozenset({2, 3, 4, 5, 6}),
        years=None,
    )


def test_steps_ranges_lists_and_names() -> None:
    cron = parse_cron("*/15 8-17/3 1,15 jan-MAR ? 2026-2027")
    assert cron.minutes == (0, 15, 30, 45)
    assert cron.hours == (8, 11, 14, 17)
    assert cron.days_of_month == frozenset({1, 15})
    assert cron.months == frozenset({1, 2, 3})
    assert cron.days_of_week is None
    assert cron.years == frozenset({2026, 2027})


def test_a_start_with_a_step_runs_to_the_end_of_the_field() -> None:
    cron = parse_cron("5/20 23 ? DEC SUN,7 2199")
    assert cron.minutes == (5, 25, 45)
    assert cron.hours == (23,)
    assert cron.months == frozenset({12})
    assert cron.days_of_week == frozenset({1, 7})
    assert cron.years == frozenset({2199})


def test_field_limits_are_inclusive() -> None:
    low = parse_cron("0 0 1 1 ? 1970")
    high = parse_cron("59 23 31 12 ? 2199")
    assert (low.minutes, low.hours, low.days_of_month, low.months, low.years) == (
        (0,),
        (0,),
        frozenset({1}),
        frozenset({1}),
        frozenset({1970}),
    )
    assert (high.minutes, high.hours, high.days_of_month, high.months, high.years) == (
        (59,),
        (23,),
        frozenset({31}),
        frozenset({12}),
        frozenset({2199}),
    )
    assert parse_cron("* * * * * *").days_of_week is None


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            "0 8 * *",
            "serving window cron '0 8 * *' must have 6 fields (minutes hours day-of-month month "
            "day-of-week year), e.g. '0 8 ? * MON-FRI *'",
        ),
        ("0 8 1 * MON *", "serving window cron '0 8 1 * MON *': use '?' in day-of-month or day-of-week"),
        (
            "0 8 L * ? *",
            "serving window cron '0 8 L * ? *', day-of-month field 'L': L, W and # are not supported; "
            "list the days explicitly",
        ),
        (
            "0 8 LW * ? *",
            "serving window cron '0 8 LW * ? *', day-of-month field 'LW': L, W and # are not supported; "
            "list the days explicitly",
        ),
        (
            "0 8 15W * ? *",
            "serving window cron '0 8 15W * ? *', day-of-month field '15W': L, W and # are not "
            "supported; list the days explicitly",
        ),
        (
            "0 8 ? * 6L *",
            "serving window cron '0 8 ? * 6L *', day-of-week field '6L': L, W and # are not "
            "supported; list the days explicitly",
        ),
        (
            "0 8 ? * 2#1 *",
            "serving window cron '0 8 ? * 2#1 *', day-of-week field '2#1': L, W and # are not "
            "supported; list the days explicitly",
        ),
        (
            "0 8 ? * FUNDAY *",
            "serving window cron '0 8 ? * FUNDAY *', day-of-week field 'FUNDAY': 'FUNDAY' is not a "
            "number or one of SUN, MON, TUE, WED, THU, FRI, SAT",
        ),
        ("x 8 ? * * *", "serving window cron 'x 8 ? * * *', minutes field 'x': 'X' is not a number"),
        ("60 8 ? * * *", "serving window cron '60 8 ? * * *', minutes field '60': 60 is outside 0-59"),
        ("0 24 ? * * *", "serving window cron '0 24 ? * * *', hours field '24': 24 is outside 0-23"),
        (
            "0 8 0 * ? *",
            "serving window cron '0 8 0 * ? *', day-of-month field '0': 0 is outside 1-31",
        ),
        ("0 8 ? 13 * *", "serving window cron '0 8 ? 13 * *', month field '13': 13 is outside 1-12"),
        ("0 8 ? * 8 *", "serving window cron '0 8 ? * 8 *', day-of-week field '8': 8 is outside 1-7"),
        (
            "0 8 ? * * 1969",
            "serving window cron '0 8 ? * * 1969', year field '1969': 1969 is outside 1970-2199",
        ),
        (
            "*/0 8 ? * * *",
            "serving window cron '*/0 8 ? * * *', minutes field '*/0': step must be a positive number",
        ),
        (
            "*/x 8 ? * * *",
            "serving window cron '*/x 8 ? * * *', minutes field '*/x': step must be a positive number",
        ),
        (
            "0 17-8 ? * * *",
            "serving window cron '0 17-8 ? * * *', hours field '17-8': range start is after its end",
        ),
    ],
)
def test_invalid_crons_are_refused_with_the_field_and_the_reason(expression: str, message: str) -> None:
    with pytest.raises(CronError) as info:
        parse_cron(expression)
    assert str(info.value) == message


def test_validate_windows_names_the_first_invalid_expression() -> None:
    validate_windows([ServingWindow(cron="0 8 ? * MON-FRI *", minutes=60)])
    with pytest.raises(CronError, match="'0 8 L \\* \\? \\*'"):
        validate_windows(
            [
                ServingWindow(cron="0 8 ? * MON-FRI *", minutes=60),
                ServingWindow(cron="0 8 L * ? *", minutes=60),
            ]
        )


# --- windows: evaluation --------------------------------------------------------------------------
def at(day: int, hour: int, minute: int = 0, month: int = 11, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "minutes", "now", "inside"),
    [
        ("0 8 ? * MON-FRI *", 600, at(23, 7, 59), False),
        ("0 8 ? * MON-FRI *", 600, at(23, 8, 0), True),
        ("0 8 ? * MON-FRI *", 600, at(23, 17, 59), True),
        ("0 8 ? * MON-FRI *", 600, at(23, 18, 0), False),
        ("0 8 ? * MON-FRI *", 600, at(28, 10), False),  # Saturday
        ("0 8 ? * SUN *", 60, at(22, 8, 30), True),  # 2026-11-22 is a Sunday
        ("0 8 ? * 1 *", 60, at(22, 8, 30), True),
        ("0 8 ? * 7 *", 60, at(28, 8, 30), True),  # Saturday is 7
        ("0 8 ? * 7 *", 60, at(22, 8, 30), False),
        ("0 22 ? * * *", 180, at(24, 0, 30), True),  # opened the evening before
        ("0 22 ? * * *", 180, at(24, 1, 0), False),
        ("0 8 15 * ? *", 120, at(15, 9), True),
        ("0 8 15 * ? *", 120, at(16, 9), False),
        ("0 8 ? FEB * *", 120, at(23, 9), False),
        ("0 8 ? NOV * *", 120, at(23, 9), True),
        ("0 8 ? * * 2027", 120, at(23, 9), False),
        ("0 8 ? * * 2026", 120, at(23, 9), True),
        ("30 9,11 ? * * *", 45, at(23, 10, 14), True),
        ("30 9,11 ? * * *", 45, at(23, 10, 15), False),
        ("30 9,11 ? * * *", 45, at(23, 11, 29), False),
    ],
)
def test_in_window(cron: str, minutes: int, now: datetime, inside: bool) -> None:
    assert in_window([ServingWindow(cron=cron, minutes=minutes)], now) is inside


def test_latest_start_looks_back_to_the_horizon_only() -> None:
    from datetime import timedelta

    cron = parse_cron("0 8 ? * MON *")
    assert cron.latest_start(at(23, 10), timedelta(hours=2)) == at(23, 8)
    assert cron.latest_start(at(23, 10), timedelta(hours=1)) is None
    assert cron.latest_start(at(24, 10), timedelta(days=1, hours=2)) == at(23, 8)
    assert cron.latest_start(at(24, 10), timedelta(days=1)) is None


# --- policy ---------------------------------------------------------------------------------------
RULES = Policy(idle_minutes=15, start_retry_limit=2, pending_ttl_seconds=300)
NOW = 1_000_000.0
WHY_IDLE = "no work for 900 s (idle threshold), outside serving windows"
WHY_RECENT = "last detection less than 900 s ago (idle threshold)"


def observe(status: str | None, backlog: int = 0, in_window: bool = False) -> Observation:
    return Observation(now=NOW, model_status=status, queue_backlog=backlog, in_window=in_window)


@pytest.mark.parametrize(
    ("state", "observation", "expected"),
    [
        (
            ServingState(),
            observe(None),
            Decision(Desired.STOPPED, Action.NONE, "no production version to serve"),
        ),
        (
            ServingState(transition="START", transition_expires_at=NOW + 1),
            observe("STOPPED"),
            Decision(Desired.STOPPED, Action.NONE, f"START transition in progress; {WHY_IDLE}"),
        ),
        (
            ServingState(transition="START", transition_expires_at=NOW),
            observe("RUNNING"),
            Decision(Desired.STOPPED, Action.STOP, WHY_IDLE),
        ),
        (
            ServingState(transition="STOP"),
            observe("RUNNING"),
            Decision(Desired.STOPPED, Action.NONE, f"STOP transition in progress; {WHY_IDLE}"),
        ),
        (
            ServingState(),
            observe("STARTING"),
            Decision(Desired.STOPPED, Action.NONE, f"model is STARTING; waiting before acting ({WHY_IDLE})"),
        ),
        (
            ServingState(last_detection_at=NOW - 60, start_attempts=2),
            observe("RUNNING"),
            Decision(Desired.RUNNING, Action.NONE, WHY_RECENT, reset_attempts=True),
        ),
        (
            ServingState(last_detection_at=NOW - 60, start_attempts=1),
            observe("RUNNING"),
            Decision(Desired.RUNNING, Action.NONE, WHY_RECENT, reset_attempts=True),
        ),
        (
            ServingState(last_detection_at=NOW - 60),
            observe("RUNNING"),
            Decision(Desired.RUNNING, Action.NONE, WHY_RECENT),
        ),
        (
            ServingState(),
            observe("TRAINING_FAILED", in_window=True),
            Decision(
                Desired.RUNNING,
                Action.NONE,
                "model is TRAINING_FAILED and cannot be started (inside a serving window)",
            ),
        ),
        (
            ServingState(start_attempts=3),
            observe("FAILED", in_window=True),
            Decision(
                Desired.RUNNING, Action.NONE, "start failed 3 times (limit 1 + 2 retries)", gave_up=True
            ),
        ),
        (
            ServingState(start_attempts=2),
            observe("FAILED", in_window=True),
            Decision(Desired.RUNNING, Action.START, "inside a serving window"),
        ),
        (
            ServingState(start_attempts=1),
            observe("RUNNING"),
            Decision(Desired.STOPPED, Action.STOP, WHY_IDLE, reset_attempts=True),
        ),
        (ServingState(), observe("RUNNING"), Decision(Desired.STOPPED, Action.STOP, WHY_IDLE)),
        (
            ServingState(start_attempts=1),
            observe("FAILED"),
            Decision(Desired.STOPPED, Action.NONE, f"model is FAILED; {WHY_IDLE}", reset_attempts=True),
        ),
        (
            ServingState(),
            observe("STOPPED"),
            Decision(Desired.STOPPED, Action.NONE, f"model is STOPPED; {WHY_IDLE}"),
        ),
        (
            ServingState(override=Override(Desired.RUNNING, NOW + 1)),
            observe("STOPPED"),
            Decision(Desired.RUNNING, Action.START, f"manual override until {NOW + 1:.0f}"),
        ),
        (
            ServingState(override=Override(Desired.RUNNING, NOW)),
            observe("STOPPED"),
            Decision(Desired.STOPPED, Action.NONE, f"model is STOPPED; {WHY_IDLE}"),
        ),
        (
            ServingState(deferred_at=NOW - 300),
            observe("STOPPED", backlog=1),
            Decision(Desired.RUNNING, Action.START, "images wait in the detection queue"),
        ),
        (
            ServingState(deferred_at=NOW - 301),
            observe("STOPPED", backlog=1),
            Decision(Desired.STOPPED, Action.NONE, f"model is STOPPED; {WHY_IDLE}"),
        ),
        (
            ServingState(deferred_at=NOW - 10),
            observe("STOPPED", backlog=0),
            Decision(Desired.STOPPED, Action.NONE, f"model is STOPPED; {WHY_IDLE}"),
        ),
        (
            ServingState(deferred_at=NOW - 10, last_detection_at=NOW - 10 - 15 * 60),
            observe("STOPPED", backlog=2),
            Decision(Desired.RUNNING, Action.START, "images wait in the detection queue"),
        ),
        (
            ServingState(deferred_at=NOW - 16 * 60, last_detection_at=NOW - 16 * 60),
            observe("STOPPED", backlog=2),
            Decision(Desired.STOPPED, Action.NONE, f"model is STOPPED; {WHY_IDLE}"),
        ),
        (
            ServingState(last_detection_at=NOW - 15 * 60),
            observe("STOPPED"),
            Decision(Desired.STOPPED, Action.NONE, f"model is STOPPED; {WHY_IDLE}"),
        ),
        (
            ServingState(last_detection_at=NOW - 15 * 60 + 1),
            observe("STOPPED"),
            Decision(Desired.RUNNING, Action.START, WHY_RECENT),
        ),
    ],
)
def test_decide(state: ServingState, observation: Observation, expected: Decision) -> None:
    assert policy.decide(state, observation, RULES) == expected


def test_transition_without_expiry_stays_active() -> None:
    assert ServingState(transition="START").transition_active(NOW)
    assert not ServingState(transition="START", transition_expires_at=NOW).transition_active(NOW)
    assert ServingState(transition="START", transition_expires_at=NOW + 1).transition_active(NOW)
    assert not ServingState().transition_active(NOW)


@pytest.mark.parametrize(("poll", "delay"), [(-5, 1), (0, 1), (1, 1), (60, 60), (900, 900), (901, 900)])
def test_deferral_delay_is_clamped_to_sqs(poll: int, delay: int) -> None:
    assert policy.deferral_delay_seconds(poll) == delay


def test_pending_ttl_and_max_polls() -> None:
    assert policy.pending_ttl_seconds(60, 5) == 2 * 60 + 2 * 5 * 60
    assert policy.pending_ttl_seconds(2000, 1) == 2 * 900 + 120
    assert policy.max_polls(30) == 120
    assert policy.max_polls(7) == 515  # ceil(3600 / 7)
    assert policy.max_polls(0) == 3600
    assert policy.max_polls(4000) == 1


# --- gate -----------------------------------------------------------------------------------------
def production(f1: float) -> ProductionRecord:
    return ProductionRecord(
        project="digits",
        version_arn="arn:v1",
        version_name="v1",
        f1_score=f1,
        promoted_at="2026-11-21T18:00:00+00:00",
    )


def test_gate_decisions_in_full() -> None:
    assert gate.evaluate(None, production=None, f1_floor=0.5, margin=0.0) == gate.GateDecision(
        "REJECT", "the training reported no F1 score", None
    )
    assert gate.evaluate(0.4, production=None, f1_floor=0.5, margin=0.0) == gate.GateDecision(
        "REJECT", "F1 0.4000 is below the floor 0.5000", 0.4
    )
    assert gate.evaluate(0.6, production=None, f1_floor=0.5, margin=0.0) == gate.GateDecision(
        "PROMOTE", "F1 0.6000 meets the floor 0.5000; no version in production", 0.6
    )
    assert gate.evaluate(0.7, production=production(0.7), f1_floor=0.5, margin=0.0) == gate.GateDecision(
        "REJECT", "F1 0.7000 does not beat production v1 (F1 0.7000) by the margin 0.0000", 0.7, 0.7
    )
    assert gate.evaluate(0.9, production=production(0.7), f1_floor=0.5, margin=0.05) == gate.GateDecision(
        "PROMOTE", "F1 0.9000 beats production v1 (F1 0.7000) by 0.2000 (margin 0.0500)", 0.9, 0.7
    )


def test_an_f1_within_float_rounding_below_the_floor_still_meets_it() -> None:
    assert gate.evaluate(0.3 - 1e-12, production=None, f1_floor=0.3, margin=0.0).promote
    assert not gate.evaluate(0.3 - 1e-6, production=None, f1_floor=0.3, margin=0.0).promote


def test_production_summary() -> None:
    assert gate.production_summary(None, "RUNNING") is None
    assert gate.production_summary(production(0.8), "RUNNING") == {
        "version_arn": "arn:v1",
        "version_name": "v1",
        "f1_score": 0.8,
        "status": "RUNNING",
    }
    assert gate.production_summary(production(0.8), None)["status"] == "UNKNOWN"  # type: ignore[index]


# --- chunking -------------------------------------------------------------------------------------
def text_line(text: str) -> Line:
    return Line(f"s3://b/{text or 'empty'}", text)


def test_chunks_are_filled_exactly_to_the_limit() -> None:
    lines = [text_line(t) for t in ("aaaa", "bbbb", "cccc", "dddd", "")]
    chunks = list(chunking.pack(lines, limit=9))
    assert [[line.text for line in chunk] for chunk in chunks] == [["aaaa", "bbbb"], ["cccc", "dddd"], [""]]
    assert [chunking.encode(chunk) for chunk in chunks] == [b"aaaa\nbbbb", b"cccc\ndddd", b""]


def test_a_line_of_exactly_the_limit_fits_and_one_byte_more_does_not() -> None:
    assert [len(c) for c in chunking.pack([text_line("x" * 9)], limit=9)] == [1]
    with pytest.raises(chunking.LineTooLarge) as info:
        list(chunking.pack([text_line("x" * 10)], limit=9))
    assert str(info.value) == "s3://b/xxxxxxxxxx: a 10-byte line cannot fit one update"


def test_payload_and_lower_bound_of_nothing_and_something() -> None:
    assert chunking.payload_bytes([]) == 0
    assert chunking.lower_bound([]) == 0
    lines = [text_line("aaaa"), text_line("bb")]
    assert chunking.payload_bytes(lines) == 7
    assert chunking.lower_bound(lines, limit=7) == 1
    assert chunking.lower_bound(lines, limit=6) == 2
    assert chunking.lower_bound(lines, limit=3) == 3


# --- deferral -------------------------------------------------------------------------------------
def test_deferral_attributes_in_both_spellings() -> None:
    lambda_shape = {
        "autopilot_deferrals": {"stringValue": "3"},
        "autopilot_first_deferred_at": {"stringValue": "12.5"},
    }
    sqs_shape = {
        "autopilot_deferrals": {"StringValue": "4"},
        "autopilot_first_deferred_at": {"StringValue": "99.25"},
    }
    assert DeferralInfo.from_attributes(lambda_shape) == DeferralInfo(count=3, first_at=12.5)
    assert DeferralInfo.from_attributes(sqs_shape) == DeferralInfo(count=4, first_at=99.25)
    assert DeferralInfo.from_attributes({}) == DeferralInfo(count=0, first_at=None)


def test_waited() -> None:
    assert DeferralInfo().waited(500.0) == 0.0
    assert DeferralInfo(first_at=200.0).waited(500.0) == 300.0


class FixedJitter:
    def __init__(self, value: float) -> None:
        self.value = value
        self.calls: list[tuple[float, float]] = []

    def uniform(self, low: float, high: float) -> float:
        self.calls.append((low, high))
        return self.value


@pytest.mark.parametrize(("count", "delay"), [(0, 9), (1, 14), (3, 44), (5, 164), (6, 304), (20, 304)])
def test_throttle_delay_doubles_from_5_s_up_to_300_s_plus_jitter(count: int, delay: int) -> None:
    jitter = FixedJitter(4.9)
    assert throttle_delay(count, jitter) == delay  # type: ignore[arg-type]
    assert jitter.calls == [(0, 5)]


def test_throttle_delay_without_an_rng_stays_within_its_jitter() -> None:
    random.seed(7)
    assert all(10 <= throttle_delay(1) <= 15 for _ in range(50))


class Sqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **request: Any) -> dict[str, Any]:
        self.sent.append(request)
        return {}


def test_requeue_keeps_the_first_deferral_time_and_clamps_the_delay() -> None:
    sqs = Sqs()
    requeuer = Requeuer("https://q", sqs_client=sqs)
    requeuer.requeue("b", DeferralInfo(count=1, first_at=100.0), now=250.0, delay_seconds=0)
    requeuer.requeue("b", DeferralInfo(), now=250.0, delay_seconds=-3)
    requeuer.requeue("b", DeferralInfo(), now=250.0, delay_seconds=5000)
    assert [s["DelaySeconds"] for s in sqs.sent] == [0, 0, 900]
    assert sqs.sent[0] == {
        "QueueUrl": "https://q",
        "MessageBody": "b",
        "DelaySeconds": 0,
        "MessageAttributes": {
            "autopilot_deferrals": {"DataType": "Number", "StringValue": "2"},
            "autopilot_first_deferred_at": {"DataType": "Number", "StringValue": "100.000"},
        },
    }
    assert sqs.sent[1]["MessageAttributes"]["autopilot_first_deferred_at"]["StringValue"] == "250.000"


def test_waited_too_long_says_how_long() -> None:
    with pytest.raises(WaitedTooLong) as info:
        Requeuer("https://q", sqs_client=Sqs()).requeue(
            "b", DeferralInfo(first_at=0.0), now=3_600_000.0, delay_seconds=60
        )
    assert str(info.value) == (
        "the image waited 1000.0 h for the model (limit 6 h); failing the message so it reaches the "
        "DLQ for a redrive"
    )


def test_requeue_and_start_request_reach_real_queues_and_buses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        aws.reset_clients()
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="detection")["QueueUrl"]
        Requeuer(url).requeue("body", DeferralInfo(), now=10.0, delay_seconds=0)
        [message] = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
        assert message["Body"] == "body"
        events = boto3.client("events", region_name="us-east-1")
        events.create_event_bus(Name="autopilot")
        ControlRequester("autopilot").request_start("digits")
        aws.reset_clients()


def test_a_refused_start_request_is_an_error() -> None:
    class Refusing:
        def put_events(self, **request: Any) -> dict[str, Any]:
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "X"}]}

    with pytest.raises(RuntimeError, match="start request for project digits was not accepted"):
        ControlRequester("bus", events_client=Refusing()).request_start("digits")


# --- retention ------------------------------------------------------------------------------------
def test_retention_keeps_exactly_the_newest_retain_versions() -> None:
    versions = [
        VersionInfo(arn=f"arn:{i}", name=f"v{i}", status="TRAINING_COMPLETED", created_epoch=i)
        for i in range(5)
    ]
    plan = retention.plan(versions, retain=2, protected_arns=[None])
    assert [v.name for v in plan.keep] == ["v4", "v3"]
    assert [v.name for v in plan.delete] == ["v2", "v1", "v0"]


# --- edges found by the mutation run --------------------------------------------------------------
@pytest.fixture(autouse=True)
def _fresh_cron_cache() -> None:
    """parse_cron is memoized: every test parses afresh, so no result carries over between tests."""
    parse_cron.cache_clear()


def test_gate_tolerance_edges() -> None:
    # F1 exactly one tolerance below the floor still meets it; likewise for production + margin
    assert gate.evaluate(0.5 - 1e-9, production=None, f1_floor=0.5, margin=0.0).promote
    required = 0.8 + 0.05
    assert gate.evaluate(required - 1e-9, production=production(0.8), f1_floor=0.5, margin=0.05).promote


def test_a_deferral_at_the_time_of_the_last_detection_is_no_waiting_work() -> None:
    rules = Policy(idle_minutes=1, start_retry_limit=2, pending_ttl_seconds=3600)
    state = ServingState(deferred_at=NOW - 120, last_detection_at=NOW - 120)
    assert policy.decide(state, observe("STOPPED", backlog=3), rules).desired is Desired.STOPPED
    later = ServingState(deferred_at=NOW - 119, last_detection_at=NOW - 120)
    assert policy.decide(later, observe("STOPPED", backlog=3), rules).action is Action.START


def test_more_cron_edges() -> None:
    every = parse_cron("* * * * * *")
    assert (every.minutes, every.hours) == (tuple(range(60)), tuple(range(24)))
    assert (every.days_of_month, every.months, every.days_of_week, every.years) == (None, None, None, None)
    assert parse_cron("*/1 8-8 ? * * *").minutes == tuple(range(60))
    assert parse_cron("*/1 8-8 ? * * *").hours == (8,)
    assert parse_cron("0 8 ? * 2/2 *").days_of_week == frozenset({2, 4, 6})
    for expression, message in (
        (
            "0 8 1AW * ? *",
            "serving window cron '0 8 1AW * ? *', day-of-month field '1AW': '1AW' is not a number",
        ),
        (
            "0 1-2-3 ? * * *",
            "serving window cron '0 1-2-3 ? * * *', hours field '1-2-3': '2-3' is not a number",
        ),
    ):
        with pytest.raises(CronError) as info:
            parse_cron(expression)
        assert str(info.value) == message


def test_a_question_mark_with_a_step_is_the_whole_field() -> None:
    assert parse_cron("0 8 ? * ?/2 *").days_of_week == frozenset({1, 3, 5, 7})
