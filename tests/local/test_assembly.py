"""`--app ASSEMBLY`: the stack template of an already synthesized cloud assembly, and the flags of
`autopilot local run` and `local serve`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autopilot.cli import main
from autopilot.local.template import assembly_template

TEMPLATE = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {}}}}


def write_assembly(folder: Path, stacks: dict[str, dict[str, Any]]) -> Path:
    """A cloud assembly as `cdk synth` writes it: manifest.json naming each stack's template file."""
    folder.mkdir(parents=True, exist_ok=True)
    artifacts: dict[str, Any] = {"Tree": {"type": "cdk:tree", "properties": {"file": "tree.json"}}}
    for name, template in stacks.items():
        (folder / f"{name}.template.json").write_text(json.dumps(template), encoding="utf-8")
        artifacts[name] = {
            "type": "aws:cloudformation:stack",
            "environment": "aws://unknown-account/unknown-region",
            "properties": {"templateFile": f"{name}.template.json"},
            "displayName": name,
        }
    (folder / "manifest.json").write_text(json.dumps({"version": "36.0.0", "artifacts": artifacts}))
    return folder


def test_the_one_stack_of_an_assembly_is_read(tmp_path: Path) -> None:
    folder = write_assembly(tmp_path / "cdk.out", {"CustomLabelsAutopilot": TEMPLATE})
    assert assembly_template(folder) == TEMPLATE
    assert assembly_template(str(folder), stack_name="CustomLabelsAutopilot") == TEMPLATE


@pytest.mark.parametrize(
    ("stacks", "expected"),
    [
        ({"A": TEMPLATE, "B": TEMPLATE}, "expected one CloudFormation stack in manifest.json, found A, B"),
        ({}, "found none"),
    ],
)
def test_an_assembly_without_exactly_one_stack_is_refused(
    tmp_path: Path, stacks: dict[str, Any], expected: str
) -> None:
    folder = write_assembly(tmp_path / "cdk.out", stacks)
    with pytest.raises(ValueError, match=expected):
        assembly_template(folder)


def test_a_folder_that_is_no_assembly_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no manifest.json there; pass the cloud assembly folder"):
        assembly_template(tmp_path)
    folder = write_assembly(tmp_path / "broken", {"S": TEMPLATE})
    (folder / "S.template.json").unlink()
    with pytest.raises(ValueError, match=r"the template of stack S \(S.template.json\) is missing"):
        assembly_template(folder)


@pytest.mark.parametrize("command", ["run", "serve"])
def test_run_and_serve_take_app_and_no_iam(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import autopilot.local.demo as demo
    import autopilot.local.serve as serve

    seen: list[Any] = []

    class Report:
        ok = True

    monkeypatch.setattr(demo, "run_demo", lambda options, out=None: seen.append(options) or Report())
    monkeypatch.setattr(serve, "serve", lambda options, out: seen.append(options) or 0)
    assert main(["local", command, "--app", str(tmp_path), "--no-iam"]) == 0
    assert main(["local", command]) == 0
    assert (seen[0].app, seen[0].iam) == (tmp_path, False)
    assert (seen[1].app, seen[1].iam) == (None, True)
