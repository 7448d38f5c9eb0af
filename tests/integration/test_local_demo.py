"""`autopilot local run` end to end on a small slice of the bundled digits."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from autopilot.local.demo import DemoOptions, run_demo

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-stack")]


def test_demo_runs_every_phase_and_reports_its_figures(tmp_path: Path) -> None:
    # Given a small demo (6 train + 2 test images per digit, 1 held out each)
    options = DemoOptions(
        train_per_label=6, test_per_label=2, held_out_per_label=1, state_dir=tmp_path, phase_timeout_s=150
    )
    out = io.StringIO()
    # When it runs
    report = run_demo(options, out=out)
    # Then every phase passed, in order, and the summary has the promised figures
    assert [phase.status for phase in report.phases] == ["ok"] * len(report.phases), out.getvalue()[-3000:]
    names = " ".join(phase.name for phase in report.phases)
    for step in (
        "upload",
        "ingestion",
        "training",
        "promotion",
        "inference",
        "auto-start",
        "detections",
        "idle stop",
        "report",
    ):
        assert step in names
    summary = report.summary
    assert summary["dataset_entries"] == {"TRAIN": 60, "TEST": 20}
    assert summary["f1"] is not None and 0 <= summary["f1"] <= 1
    assert len(summary["label_f1"]) == 10 and all(0 <= f1 <= 1 for f1 in summary["label_f1"].values())
    assert summary["held_out_detected"] == 10 and summary["held_out_accuracy"] is not None
    # F1 names the set it was computed on; the split was shuffled with the default seed
    assert summary["f1_computed_on"].startswith("TEST dataset (20 images")
    assert "shuffled with seed 7" in summary["split"]
    assert sum(summary["messages_published"].values()) >= 10
    assert summary["inference_unit_hours"]["local_seconds"] > 0
    # The model was started once for the held-out images and not stopped before they were served
    assert summary["model_starts"] == 1, out.getvalue()[-3000:]
    # The controller measured that start from the model's own transition, on one clock (positive)
    starts = summary["measured_transitions"]["start_seconds"]
    assert len(starts) == 1 and 0 < starts[0] <= 3600, summary["measured_transitions"]
    assert summary["function_errors"] == 0
    # Every call and delivery was checked against the synthesized policies, and none was denied
    # (108 distinct triples in the run that set this floor)
    assert summary["iam"]["denied"] == 0 and summary["iam"]["unmapped"] == []
    assert summary["iam"]["checked"] >= 80
    assert "IAM: every call and delivery allowed" in names
    assert "Summary" in out.getvalue() and "-> OK" in out.getvalue()
    assert (tmp_path / "functions.log").stat().st_size > 0
    # The run's report: its path printed, the demo's detections counted in its serving section
    assert summary["report"] == str(tmp_path / "report.html") and summary["report"] in out.getvalue()
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<svg" in page and f"<b>{summary['held_out_detected']}</b>" in page


def test_demo_reports_a_missing_part_instead_of_faking_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stack whose queues trigger no function (the event source mappings are missing)
    import autopilot.local.demo as demo

    real_synth = demo.synth_template

    def without_triggers(*args: Any, **kwargs: Any) -> dict[str, Any]:
        template = real_synth(*args, **kwargs)
        template["Resources"] = {
            lid: res
            for lid, res in template["Resources"].items()
            if res["Type"] != "AWS::Lambda::EventSourceMapping"
        }
        return template

    monkeypatch.setattr(demo, "synth_template", without_triggers)
    # When the demo runs
    report = run_demo(
        DemoOptions(
            train_per_label=2, test_per_label=1, held_out_per_label=1, state_dir=tmp_path, phase_timeout_s=5
        ),
        quiet=True,
    )
    # Then ingestion fails with a message saying what it waited for, and the rest is skipped
    assert not report.ok
    failed = [p for p in report.phases if p.status == "failed"]
    assert len(failed) == 1 and failed[0].name.startswith("ingestion")
    assert "labeled dataset entries" in failed[0].detail
    assert all(p.status == "skipped" for p in report.phases[report.phases.index(failed[0]) + 1 :])
