"""The demo reuses its synthesized template only while the sources and the context are unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autopilot.local.synth_cache import cached_template


def _tree(root: Path) -> None:
    for name, text in (
        ("infra/stack.py", "STACK = 1\n"),
        ("lambdas/handler.py", "def handle(event, context): ...\n"),
        ("cdk.json", "{}\n"),
        ("pyproject.toml", "[project]\n"),
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def test_the_template_is_synthesized_again_only_when_something_changed(tmp_path: Path) -> None:
    root, state = tmp_path / "repo", tmp_path / "state"
    _tree(root)
    calls: list[int] = []

    def synthesize() -> dict[str, Any]:
        calls.append(1)
        return {"Resources": {"Function": {"Type": "AWS::Lambda::Function"}}, "n": len(calls)}

    context = {"idle_minutes": 1}
    # Given a first run: synthesized and kept
    template, reused = cached_template(synthesize, root, context, state)
    assert (template["n"], reused, len(calls)) == (1, False, 1)
    # When nothing changed, the kept template is reused (a compiled file changes nothing)
    (root / "lambdas" / "__pycache__").mkdir()
    (root / "lambdas" / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\0")
    template, reused = cached_template(synthesize, root, context, state)
    assert (template["n"], reused, len(calls)) == (1, True, 1)
    # Then a changed function, a new infra file, or another context each synthesize afresh
    (root / "lambdas" / "handler.py").write_text("def handle(event, context): return 1\n", encoding="utf-8")
    assert cached_template(synthesize, root, context, state)[1] is False
    (root / "infra" / "extra.py").write_text("X = 2\n", encoding="utf-8")
    assert cached_template(synthesize, root, context, state)[1] is False
    assert cached_template(synthesize, root, {"idle_minutes": 2}, state)[1] is False
    assert len(calls) == 4
    # And an unreadable cache file is replaced, not trusted
    (state / "synth-cache.json").write_text("{not json", encoding="utf-8")
    template, reused = cached_template(synthesize, root, {"idle_minutes": 2}, state)
    assert (template["n"], reused) == (5, False)
