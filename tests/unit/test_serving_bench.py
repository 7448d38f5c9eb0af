"""The cost benchmark runs the controller's real decision code, bills each model, and writes its contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.serving_cost import (
    Cycle,
    Model,
    arrival_trace,
    billed_iu_hours,
    daily_batch_trace,
    main,
    run_seed,
    wait_matched_oracle,
)

DAY = 86400


def test_traces_are_seeded_and_shaped() -> None:
    first, again = arrival_trace(3), arrival_trace(3)
    assert first == again
    assert len(first) > 1000
    assert first == sorted(first)
    daily = daily_batch_trace(3)
    assert daily == daily_batch_trace(3) != daily_batch_trace(4)
    # the nightly export comes back every day, around 02:00
    nightly = {int(t // DAY) for t in daily if 1.5 * 3600 <= t % DAY <= 2.5 * 3600}
    assert nightly == set(range(7))


def test_billing_models() -> None:
    # A start requested at 0, RUNNING at 600, stop requested at 4000, STOPPED at 4060 (1 IU)
    cycle = [Cycle(requested=0.0, running=600.0, stop_requested=4000.0, stopped=4060.0)]
    assert billed_iu_hours(cycle, 1, "request-second", end=5000) == pytest.approx(4060 / 3600)
    assert billed_iu_hours(cycle, 1, "running-second", end=5000) == pytest.approx(3460 / 3600)
    assert billed_iu_hours(cycle, 1, "request-hour", end=5000) == 2.0  # 4060 s: two started hours
    assert billed_iu_hours(cycle, 2, "running-hour", end=5000) == 2.0  # 3460 s: one hour, two units
    # a start that never reached RUNNING is billed from the request only
    assert billed_iu_hours([Cycle(requested=0.0, stopped=300.0)], 1, "running-second", end=5000) == 0.0


def test_policies_rank_sensibly_on_one_seed() -> None:
    report = run_seed("bursty", seed=3, start_minutes=10)["request-second"]
    always, fixed, ours = report["always_on"], report["fixed_hours"], report["autopilot"]
    assert always["iu_hours"] == 168.0
    assert (
        report["wait_matched_oracle"]["iu_hours"] < ours["iu_hours"] < fixed["iu_hours"] < always["iu_hours"]
    )
    assert ours["iu_hours"] < report["idle_15"]["iu_hours"]  # the adaptive threshold beats the fixed default
    # the zero-wait oracle never makes an image wait more than a step; a start bounds ours
    assert report["oracle"]["p95_wait_s"] <= 10
    assert ours["p95_wait_s"] <= 10 * 60 + 60 + 10


def test_wait_matched_oracle_stops_only_when_a_restart_is_cheaper() -> None:
    decide = wait_matched_oracle("request-second")
    model = Model(units=1, start_seconds=600, stop_seconds=60, status="RUNNING", cycles=[Cycle(0.0, 600.0)])
    # next arrival in 10 min: running through (600 s) is cheaper than a stop and a start (660 s)
    assert decide(1000.0, model, 0, {"next_arrival": 1600.0}) == "NONE"
    assert decide(1000.0, model, 0, {"next_arrival": 1700.0}) == "STOP"
    assert decide(1000.0, model, 3, {"next_arrival": 5000.0}) == "NONE"  # work waits


def test_main_writes_the_contract_format(tmp_path: Path) -> None:
    out = tmp_path / "serving_cost.json"
    assert main(["--seeds", "1", "--families", "daily", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == {"seeds", "policies"}
    assert result["seeds"] == 1
    assert {"autopilot", "oracle", "wait_matched_oracle", "always_on"} <= set(result["policies"])
    assert set(result["policies"]["autopilot"]) == {"iu_hours", "p95_wait_s", "starts"}
    detail = json.loads((tmp_path / "serving_cost_detail.json").read_text())
    assert set(detail["families"]["daily"]) == {
        "request-second",
        "running-second",
        "request-hour",
        "running-hour",
    }


def test_bad_arguments_are_named() -> None:
    with pytest.raises(SystemExit):
        main(["--families", "weekly"])
