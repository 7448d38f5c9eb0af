"""`autopilot engine serve` and `autopilot engine fault`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from autopilot.cli import main
from autopilot.engine.testing import RunningEngine

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_serve_answers_boto3(tmp_path: Path) -> None:
    # Given the engine started as a separate process on a free port, with a data directory
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autopilot.cli",
            "engine",
            "serve",
            "--port",
            "0",
            "--time-scale",
            "0.01",
            "--data-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = first.split("listening on ", 1)[1].split(" ", 1)[0]
        # When
        client = boto3.client("rekognition", endpoint_url=url, region_name="eu-west-1")
        arn = client.create_project(ProjectName="cli")["ProjectArn"]
        # Then
        assert ":eu-west-1:" in arn
        assert client.describe_projects()["ProjectDescriptions"][0]["ProjectArn"] == arn
        assert (tmp_path / "state.json").exists()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_fault_command_arms_a_running_engine(running: RunningEngine, capsys: Any) -> None:
    assert (
        main(["engine", "fault", "--url", running.url, "throttle", "--operation", "DetectCustomLabels"]) == 0
    )
    assert running.faults.list()[0]["operation"] == "DetectCustomLabels"
    assert main(["engine", "fault", "--url", running.url, "clear"]) == 0
    assert running.faults.list() == []
    assert '"faults": []' in capsys.readouterr().out


def test_serve_is_registered() -> None:
    with pytest.raises(SystemExit):
        main(["engine", "serve", "--help"])


def test_fault_command_finds_the_engine_of_a_local_stack(
    running: RunningEngine, tmp_path: Path, capsys: Any
) -> None:
    # Given the env file `autopilot local serve` writes, naming the engine
    env_file = tmp_path / "local.env"
    env_file.write_text(f"export AWS_ENDPOINT_URL_REKOGNITION={running.url}\n", encoding="utf-8")
    # When a fault is armed through it, without --url
    code = main(["engine", "fault", "--env-file", str(env_file), "error", "--operation", "DescribeDataset"])
    # Then the engine has it
    assert code == 0
    assert running.faults.list()[0]["operation"] == "DescribeDataset"
    assert main(["engine", "fault", "--env-file", str(env_file), "clear"]) == 0


def test_fault_command_without_an_engine_in_the_env_file_says_so(tmp_path: Path, capsys: Any) -> None:
    env_file = tmp_path / "local.env"
    env_file.write_text("export AWS_REGION=us-east-1\n", encoding="utf-8")
    code = main(["engine", "fault", "--env-file", str(env_file), "clear"])
    assert code == 1
    assert "names no engine" in capsys.readouterr().err
