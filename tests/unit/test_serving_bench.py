"""The cost benchmark runs the controller's real decision code and ranks the policies sensibly."""

from __future__ import annotations

from pathlib import Path

from bench.serving_cost import arrival_trace, main, run


def test_trace_is_seeded_and_bursty() -> None:
    first, again = arrival_trace(3), arrival_trace(3)
    assert first == again
    assert len(first) > 1000
    assert first == sorted(first)


def test_autopilot_costs_less_than_fixed_schedules_and_waits_less_than_business_hours(tmp_path: Path) -> None:
    report = run(seed=3, start_minutes=10)
    rows = {row["policy"]: row for row in report["policies"]}
    always, business = rows["always-on"], rows["business-hours (Mon-Fri 08-18)"]
    autopilot, oracle = rows["autopilot idle 15 min (default)"], rows["oracle"]
    assert always["iu_hours"] == 168.0
    assert oracle["iu_hours"] < autopilot["iu_hours"] < business["iu_hours"] < always["iu_hours"]
    # every image is classified by every policy
    assert {row["images"] for row in report["policies"]} == {report["images"]}
    # a start bounds the wait (plus a redelivery); business hours make images wait overnight
    assert autopilot["max_wait_s"] <= 10 * 60 + 2 * 60 + 10
    assert business["max_wait_s"] > 8 * 3600 > autopilot["max_wait_s"]
    assert main(["--seed", "3", "--out", str(tmp_path / "report.json")]) == 0
    assert (tmp_path / "report.json").exists()
