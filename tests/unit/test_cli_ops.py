"""The operator CLI without AWS: parsing, help, filters, env files, resource lookup, formatting."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from autopilot.cli import build_parser, main
from autopilot.ops.context import (
    EXIT_NOT_FOUND,
    CommandError,
    Context,
    StackOutputs,
    load_env_file,
    parse_env_file,
)
from autopilot.ops.datasets import entry_request
from autopilot.ops.tail import format_event

COMMANDS = [
    ["status"],
    ["entries"],
    ["labels"],
    ["train"],
    ["start"],
    ["stop"],
    ["auto"],
    ["promote"],
    ["rollback"],
    ["detect"],
    ["tail"],
    ["local"],
    ["local", "run"],
    ["local", "serve"],
    ["dataset"],
    ["dataset", "import"],
    ["dataset", "copy"],
    ["dataset", "reset"],
    ["dataset", "export"],
    ["project", "delete"],
    ["queues"],
    ["redrive"],
    ["cost"],
    ["report"],
    ["engine", "fault"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: autopilot" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["entries"],
        ["entries", "p", "--max-results", "0"],
        ["entries", "p", "--labeled", "--unlabeled"],
    ):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
    assert "1-100" in capsys.readouterr().err


def test_entries_options_map_to_list_dataset_entries_filters() -> None:
    # Given every filter on the command line
    args = build_parser().parse_args(
        [
            "entries",
            "digits",
            "--label",
            "cat",
            "--label",
            "dog",
            "--unlabeled",
            "--source-ref-contains",
            "/train/",
            "--has-errors",
            "--max-results",
            "7",
            "--next-token",
            "abc",
        ]
    )
    # When the request is built
    request = entry_request(args, "arn:dataset")
    # Then it carries exactly the API's parameters
    assert request == {
        "DatasetArn": "arn:dataset",
        "MaxResults": 7,
        "ContainsLabels": ["cat", "dog"],
        "Labeled": False,
        "SourceRefContains": "/train/",
        "HasErrors": True,
        "NextToken": "abc",
    }
    # And without filters only the page size is sent
    bare = build_parser().parse_args(["entries", "digits"])
    assert entry_request(bare, "arn:dataset") == {"DatasetArn": "arn:dataset", "MaxResults": 100}


def test_env_file_is_parsed_without_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / "local.env"
    env.write_text("# comment\nexport AUTOPILOT_X='a b'\nAUTOPILOT_Y=2\n\nnot a line\n", encoding="utf-8")
    assert parse_env_file(env) == {"AUTOPILOT_X": "a b", "AUTOPILOT_Y": "2"}
    # load_env_file also exports them (recorded by monkeypatch first, so they are restored)
    monkeypatch.setenv("AUTOPILOT_X", "before")
    monkeypatch.setenv("AUTOPILOT_Y", "before")
    load_env_file(env)
    assert os.environ["AUTOPILOT_X"] == "a b"
    with pytest.raises(CommandError) as missing:
        load_env_file(tmp_path / "absent.env")
    assert missing.value.code == EXIT_NOT_FOUND and "autopilot local serve" in str(missing.value)


def test_missing_env_file_is_exit_code_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--env-file", str(tmp_path / "nope.env")]) == 3
    assert "does not exist" in capsys.readouterr().err


def test_stack_outputs_from_the_local_stack_file(tmp_path: Path) -> None:
    # Given the stack file `autopilot local serve` writes
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(json.dumps({"outputs": {"DataBucketName": "bucket-1"}}), encoding="utf-8")
    # When the outputs are read
    outputs = StackOutputs.from_file(stack_file)
    # Then an output is found by its key, a missing one is a clear exit-code-3 error
    assert outputs.find("DataBucketName") == "bucket-1"
    assert outputs.find("StateTableName", required=False) is None
    with pytest.raises(CommandError) as missing:
        outputs.find("StateTableName")
    assert missing.value.code == EXIT_NOT_FOUND and "StateTableName" in str(missing.value)


def _cloudformation() -> tuple[object, Stubber]:
    client = boto3.client(
        "cloudformation", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return client, Stubber(client)


def test_stack_outputs_from_describe_stacks() -> None:
    # Given a deployed stack whose DescribeStacks answer carries the outputs
    client, stubber = _cloudformation()
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "CustomLabelsAutopilot",
                    "CreationTime": "2026-01-01T00:00:00Z",
                    "StackStatus": "UPDATE_COMPLETE",
                    "Outputs": [
                        {"OutputKey": "DataBucketName", "OutputValue": "customlabels-data-1"},
                        {
                            "OutputKey": "TrainingStateMachineArn",
                            "OutputValue": "arn:aws:states:eu-west-1:111122223333:stateMachine:Training",
                        },
                    ],
                }
            ]
        },
        {"StackName": "CustomLabelsAutopilot"},
    )
    # When the CLI reads them
    with stubber:
        outputs = StackOutputs.from_cloudformation(client, "CustomLabelsAutopilot")
    # Then each is found by its OutputKey, nothing is looked up by logical id
    stubber.assert_no_pending_responses()
    assert outputs.find("DataBucketName") == "customlabels-data-1"
    assert outputs.find("TrainingStateMachineArn") == (
        "arn:aws:states:eu-west-1:111122223333:stateMachine:Training"
    )
    assert "CloudFormation stack CustomLabelsAutopilot" in outputs.source


def test_a_missing_stack_tells_how_to_deploy_it() -> None:
    client, stubber = _cloudformation()
    stubber.add_client_error(
        "describe_stacks",
        service_error_code="ValidationError",
        service_message="Stack with id CustomLabelsAutopilot does not exist",
        http_status_code=400,
    )
    with stubber, pytest.raises(CommandError) as missing:
        StackOutputs.from_cloudformation(client, "CustomLabelsAutopilot")
    assert missing.value.code == EXIT_NOT_FOUND and "cdk deploy" in str(missing.value)


def test_other_describe_stacks_errors_are_not_hidden() -> None:
    client, stubber = _cloudformation()
    stubber.add_client_error("describe_stacks", service_error_code="AccessDenied", http_status_code=403)
    with stubber, pytest.raises(ClientError):
        StackOutputs.from_cloudformation(client, "CustomLabelsAutopilot")


def test_context_reads_the_outputs_from_cloudformation_without_a_stack_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given no local stack file: the context asks CloudFormation (DescribeStacks) for the named stack
    monkeypatch.delenv("AUTOPILOT_STACK_FILE", raising=False)
    client, stubber = _cloudformation()
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "Other",
                    "CreationTime": "2026-01-01T00:00:00Z",
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [{"OutputKey": "StateTableName", "OutputValue": "state"}],
                }
            ]
        },
        {"StackName": "Other"},
    )
    context = Context(argparse.Namespace(stack_name="Other", region="eu-west-1"))
    context._clients["cloudformation"] = client
    with stubber:
        assert context.resources.find("StateTableName") == "state"


def test_events_are_formatted_for_people() -> None:
    lifecycle = {
        "Message": json.dumps(
            {"type": "model.running", "project": "digits", "time": "T", "detail": {"status": "RUNNING"}}
        )
    }
    detection = {
        "Message": json.dumps(
            {
                "project": "digits",
                "status": "CLASSIFIED",
                "top_label": "seven",
                "confidence": 99.1,
                "image": {"key": "digits/inference/a.png"},
                "detected_at": "T",
            }
        )
    }
    assert "model.running" in format_event(lifecycle) and "status=RUNNING" in format_event(lifecycle)
    assert "seven" in format_event(detection) and "digits/inference/a.png" in format_event(detection)
    assert format_event({"Message": "plain"}) == "plain"


def test_parser_is_an_argparse_tree() -> None:
    assert isinstance(build_parser(), argparse.ArgumentParser)


def test_status_text_shows_label_figures_and_why_a_training_failed() -> None:
    from autopilot.ops.status import render

    status = {
        "project": "digits",
        "exists": True,
        "production": None,
        "training": {"last_outcome": "FAILED", "last_reason": "training failed: too many invalid rows"},
        "datasets": [],
        "running": [],
        "versions": [
            {
                "name": "v2",
                "status": "TRAINING_COMPLETED",
                "f1": 0.9,
                "production": False,
                "labels": [
                    {
                        "label": "cat",
                        "f1": 0.95,
                        "precision": 1.0,
                        "recall": 0.9,
                        "threshold": 0.4,
                        "test_images": 20,
                    }
                ],
            },
            {
                "name": "v3",
                "status": "TRAINING_FAILED",
                "f1": None,
                "production": False,
                "labels": [],
                "status_message": "too many invalid rows",
                "validation": {
                    "manifest_errors": [
                        {
                            "scope": "training",
                            "code": "ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST",
                            "message": "m",
                        }
                    ],
                    "error_counts": {"ERROR_INVALID_IMAGE": 7},
                    "first_lines_in_error": [
                        {
                            "dataset": "training",
                            "line": 3,
                            "source-ref": "s3://b/x.png",
                            "code": "ERROR_INVALID_IMAGE",
                            "message": "The image is invalid.",
                        }
                    ],
                    "unavailable": [],
                },
            },
        ],
    }
    text = render([status])
    assert "label cat" in text and "F1 0.950" in text and "test images 20" in text
    assert "training ERROR_TOO_MANY_INVALID_ROWS_IN_MANIFEST: m" in text
    assert "ERROR_INVALID_IMAGE: 7 lines" in text
    assert "training line 3: s3://b/x.png ERROR_INVALID_IMAGE The image is invalid." in text
    assert "last training: FAILED: training failed: too many invalid rows" in text


# ---------------------------------------------------------------------------------------------
# The AWS-only paths of the lifecycle commands, against botocore's Stubber (the local stack has no
# SQS message move tasks and no service metrics).
# ---------------------------------------------------------------------------------------------
def _context_with(clients: dict[str, object]) -> object:
    from autopilot.ops.context import Context

    args = argparse.Namespace(json=True, timeout=5.0, interval=0.0, local=False, env_file=None)
    context = Context(args)
    context._clients.update(clients)
    return context


def test_redrive_on_aws_runs_a_message_move_task_to_its_end() -> None:
    import boto3
    from botocore.stub import Stubber

    from autopilot.ops.queues import QueueInfo, _move_task

    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = QueueInfo(
        "work-dlq",
        "https://sqs.us-east-1.amazonaws.com/123456789012/work-dlq",
        "arn:aws:sqs:us-east-1:123456789012:work-dlq",
        "work",
        None,
    )
    with Stubber(sqs) as stub:
        stub.add_response("start_message_move_task", {"TaskHandle": "h1"}, {"SourceArn": dlq.arn})
        running = {"TaskHandle": "h1", "Status": "RUNNING", "SourceArn": dlq.arn}
        done = {**running, "Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 7}
        params = {"SourceArn": dlq.arn, "MaxResults": 10}
        stub.add_response("list_message_move_tasks", {"Results": [running]}, params)
        stub.add_response("list_message_move_tasks", {"Results": [done]}, params)
        assert _move_task(_context_with({"sqs": sqs}), dlq) == 7  # type: ignore[arg-type]
        stub.assert_no_pending_responses()


def test_cost_cross_check_sums_the_hourly_averages_of_in_service_inference_units() -> None:
    from datetime import UTC, datetime

    import boto3
    from botocore.stub import ANY, Stubber

    from autopilot.ops.cost import cloudwatch_iu_hours

    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    hour = datetime(2026, 11, 2, 10, tzinfo=UTC)
    with Stubber(cloudwatch) as stub:
        stub.add_response(
            "get_metric_statistics",
            {"Datapoints": [{"Timestamp": hour, "Average": 2.0}, {"Timestamp": hour, "Average": 0.5}]},
            {
                "Namespace": "AWS/Rekognition",
                "MetricName": "InServiceInferenceUnits",
                "Dimensions": [{"Name": "ProjectName", "Value": "p"}, {"Name": "VersionName", "Value": "v1"}],
                "StartTime": ANY,
                "EndTime": ANY,
                "Period": 3600,
                "Statistics": ["Average"],
            },
        )
        context = _context_with({"cloudwatch": cloudwatch})
        assert cloudwatch_iu_hours(context, "p", {"v1"}, 0.0, 3600.0) == 2.5  # type: ignore[arg-type]
