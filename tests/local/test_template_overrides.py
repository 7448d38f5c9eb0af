"""Context overrides reach the synthesized template (the local runtime relies on it)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from autopilot.local.template import Resolver, resources_of_type, synth_template


def _settings(template: dict[str, Any]) -> dict[str, Any]:
    (parameter,) = resources_of_type(template, "AWS::SSM::Parameter").values()
    return json.loads(Resolver(template).resolve(parameter["Properties"]["Value"]))


@pytest.mark.slow
def test_overrides_change_the_template_and_results_are_cached(tmp_path: Any) -> None:
    # Given an override of one project setting
    overrides = {"projects": {"defaults": {"idle_minutes": 2}, "digits": {}}}
    # When synthesized twice with it
    first = synth_template(overrides, outdir=str(tmp_path / "a"))
    second = synth_template(overrides, outdir=str(tmp_path / "b"))
    # Then the settings parameter carries the override, and the second call is served from cache
    assert _settings(first)["projects"]["digits"]["idle_minutes"] == 2
    assert first == second and first is not second
    assert not (tmp_path / "b").exists()
