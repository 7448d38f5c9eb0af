"""The demo's options, its report and the cdk.json context it synthesizes with (shared by
`autopilot local run` and `autopilot local serve`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autopilot.local.template import deep_merge

STATE_DIR = Path(".local-stack")


@dataclass
class DemoOptions:
    project: str = "digits"
    speed: float = 120.0  # schedules, queue retries and the engine run 120 times faster than AWS
    train_per_label: int = 20
    test_per_label: int = 5
    held_out_per_label: int = 3
    seed: int = 7  # the digits are shuffled (seeded) before train, test and held-out are cut
    idle_minutes: int = 1
    phase_timeout_s: float = 120.0
    state_dir: Path = STATE_DIR
    verbose: bool = False
    iam: bool = True  # every call and delivery checked against the template's policies
    app: Path | None = None  # an already synthesized cloud assembly to run (instead of synthesizing)


@dataclass
class Phase:
    name: str
    status: str  # "ok" | "failed" | "skipped"
    seconds: float = 0.0
    detail: str = ""


@dataclass
class DemoReport:
    phases: list[Phase] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    total_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.phases) and all(phase.status == "ok" for phase in self.phases)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "total_seconds": round(self.total_seconds, 1),
            "phases": [asdict(phase) for phase in self.phases],
            "summary": self.summary,
            "errors": self.errors,
            "timeline": self.timeline,
        }


def demo_context(options: DemoOptions) -> dict[str, Any]:
    """cdk.json context with the demo's short waits; the stack's wiring stays what it is."""
    from infra.app_factory import REPO_ROOT
    from lambdas.common.settings import load_cdk_context

    base = load_cdk_context(str(REPO_ROOT / "cdk.json"))
    overrides = {
        "projects": {
            "defaults": {
                "training_schedule": "rate(10 minutes)",
                "min_new_labeled_entries": 10,
                "training_poll_seconds": 2,
                "model_poll_seconds": 1,
                "idle_minutes": options.idle_minutes,
                "f1_floor": 0.5,
                "review_confidence": None,
            }
        },
        "controller_rate_minutes": 1,
        # The ingestion debounce before a dataset update (SQS message delays run in real time).
        "ingestion": {"flush_delay_seconds": 2},
    }
    return deep_merge(base, overrides)
