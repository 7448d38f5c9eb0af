"""The local runtime takes its wiring from the real CDK app: the S3 prefixes that reach the
ingestion and detection handlers follow the configured projects (infra builds one notification
per project and folder), batch sizes and failure reporting follow the event source mappings."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest

from autopilot.local.runtime import LocalRuntime, running_stack
from autopilot.local.template import synth_template
from lambdas.common.constants import OUTPUT_DATA_BUCKET

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-stack")]


def _keys_seen_by(runtime: LocalRuntime, function_part: str) -> set[str]:
    keys = set()
    for invocation in runtime.lambdas.invocations:
        if function_part not in invocation.function_name:
            continue
        for record in (invocation.event or {}).get("Records", []):
            try:
                body = json.loads(record.get("body", "{}"))
            except ValueError:
                continue
            for s3_record in body.get("Records", []) if isinstance(body, dict) else []:
                keys.add(unquote_plus(s3_record["s3"]["object"]["key"]))
    return keys


def _upload_and_pump(template: dict[str, Any], keys: list[str]) -> tuple[set[str], set[str], LocalRuntime]:
    with running_stack(template, clock_speed=1, start_pump=False) as runtime:
        runtime.pause_schedules("")  # no ticks: only S3 events matter here
        bucket = runtime.output(OUTPUT_DATA_BUCKET)
        s3 = boto3.client("s3")
        for key in keys:
            s3.put_object(Bucket=bucket, Key=key, Body=b"not really an image")
        runtime.run_until(lambda: False, timeout_s=8)
        return _keys_seen_by(runtime, "Ingestion"), _keys_seen_by(runtime, "Detection"), runtime


KEYS = [
    "cats/train/tabby/a b.png",
    "cats/inference/x.png",
    "digits/train/seven/1.png",
    "digits/inference/2.png",
]


@pytest.mark.parametrize("project", ["digits", "cats"])
def test_configured_projects_decide_which_uploads_reach_the_handlers(project: str, tmp_path: Any) -> None:
    # Given the app synthesized with only `project` configured
    template = synth_template({"projects": {project: {}}}, outdir=str(tmp_path / "cdk.out"))
    # When objects arrive under both projects' folders
    ingested, detected, runtime = _upload_and_pump(template, KEYS)
    # Then only the configured project's prefixes reached the ingestion and detection handlers
    assert ingested == {f"{project}/train/" + ("tabby/a b.png" if project == "cats" else "seven/1.png")}
    assert detected == {f"{project}/inference/" + ("x.png" if project == "cats" else "2.png")}
    # And the queue triggers carry the template's batch settings
    assert {m.report_batch_item_failures for m in runtime.mappings} == {True}
    assert all(m.batch_size >= 1 for m in runtime.mappings)
