"""`autopilot local serve`: servers on 127.0.0.1 and an env file any AWS client can use."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from pathlib import Path

import boto3
import pytest

from autopilot.cli import main
from autopilot.local.serve import ServeOptions, serve
from autopilot.ops.context import parse_env_file

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-stack")]


def test_serve_writes_an_env_file_that_clients_and_the_cli_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the local stack served in the background
    stop = threading.Event()
    out = io.StringIO()
    ready_file = tmp_path / "ready" / "stack.ready"
    options = ServeOptions(state_dir=tmp_path, duration_s=120, ready_file=ready_file)
    thread = threading.Thread(target=serve, args=(options, out, stop), daemon=True)
    thread.start()
    env_file = tmp_path / "local.env"
    deadline = time.monotonic() + 120
    while not ready_file.exists() and time.monotonic() < deadline:  # the readiness signal, no stdout parsing
        time.sleep(0.2)
    try:
        assert ready_file.exists(), out.getvalue()
        ready = json.loads(ready_file.read_text(encoding="utf-8"))
        assert ready["ready"] is True and Path(ready["env_file"]) == env_file.resolve()
        assert env_file.exists()
        # When a client sources it (endpoints, credentials, names) and uploads through the endpoint
        # (monkeypatch records the previous values first, so nothing leaks into later tests)
        values = parse_env_file(env_file)
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        assert values["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        s3 = boto3.client("s3", endpoint_url=values["AWS_ENDPOINT_URL"])
        s3.put_object(Bucket=values["AUTOPILOT_BUCKET"], Key="notes/readme.txt", Body=b"hello")
        listed = s3.list_objects_v2(Bucket=values["AUTOPILOT_BUCKET"], Prefix="notes/")
        # Then the object is in the stack's bucket, and the CLI reads the stack through the same file
        assert [item["Key"] for item in listed.get("Contents", [])] == ["notes/readme.txt"]
        cli_out = io.StringIO()
        code = main(["status", "--env-file", str(env_file), "--json", "--project", "digits"], out=cli_out)
        assert code == 0 and '"project": "digits"' in cli_out.getvalue()
    finally:
        stop.set()
        thread.join(timeout=60)
    assert "local stack stopped" in out.getvalue()
    assert not ready_file.exists()  # removed on exit: a stale file never says ready


def test_serve_runs_an_already_synthesized_assembly_and_reports_its_iam_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a cloud assembly synthesized beforehand (as `cdk synth` writes cdk.out)
    from infra.app_factory import build_app

    assembly = tmp_path / "cdk.out"
    overrides = {"aws:cdk:enable-path-metadata": True}
    app, _ = build_app(outdir=str(assembly), context_overrides=overrides, nag=False)
    app.synth()
    # When `autopilot local serve --app` runs it for a few seconds
    code = main(
        ["local", "serve", "--app", str(assembly), "--duration", "3", "--state-dir", str(tmp_path / "state")]
    )
    # Then it read the assembly instead of synthesizing, and its IAM figures are printed on stop
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"reading the cloud assembly {assembly}" in out and "synthesizing" not in out
    stack = json.loads((tmp_path / "state" / "stack.json").read_text(encoding="utf-8"))
    assert stack["outputs"]
    assert re.search(r"IAM: \d+ distinct \(principal, action, resource\) checked, 0 denied", out), out
