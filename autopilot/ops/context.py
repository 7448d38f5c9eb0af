"""What every operator command shares: the target (AWS or local), the stack's resources, output
and exit codes."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common import aws
from lambdas.common.constants import (
    OUTPUT_DATA_BUCKET,
    OUTPUT_DETECTIONS_TOPIC,
    OUTPUT_LIFECYCLE_TOPIC,
    OUTPUT_MODEL_CONTROL_STATE_MACHINE,
    OUTPUT_SETTINGS_PARAMETER,
    OUTPUT_STATE_TABLE,
    OUTPUT_TRAINING_STATE_MACHINE,
)

STACK_NAME = "CustomLabelsAutopilot"
DEFAULT_LOCAL_ENV = Path(".local-stack") / "local.env"
ENV_STACK_FILE = "AUTOPILOT_STACK_FILE"

# Exit codes
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_TIMEOUT = 4

# The stack outputs the commands use (OutputKey of DescribeStacks; see lambdas.common.constants).
DATA_BUCKET = OUTPUT_DATA_BUCKET
STATE_TABLE = OUTPUT_STATE_TABLE
SETTINGS_PARAMETER = OUTPUT_SETTINGS_PARAMETER
LIFECYCLE_TOPIC = OUTPUT_LIFECYCLE_TOPIC
DETECTIONS_TOPIC = OUTPUT_DETECTIONS_TOPIC
TRAINING_STATE_MACHINE = OUTPUT_TRAINING_STATE_MACHINE
MODEL_CONTROL_STATE_MACHINE = OUTPUT_MODEL_CONTROL_STATE_MACHINE


class CommandError(Exception):
    """A failure the user can act on; `code` is the process exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def common_options() -> argparse.ArgumentParser:
    """Options every operator command accepts (after the command name)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("target")
    group.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")
    group.add_argument(
        "--env-file",
        type=Path,
        help="an env file written by `autopilot local serve` (endpoints, credentials, stack file)",
    )
    group.add_argument(
        "--local",
        action="store_true",
        help=f"same as --env-file {DEFAULT_LOCAL_ENV} (the running local stack)",
    )
    group.add_argument(
        "--stack-name", default=STACK_NAME, help=f"CloudFormation stack (default {STACK_NAME})"
    )
    group.add_argument("--region", help="AWS region (default: the boto3 configuration)")
    return parent


def load_env_file(path: Path) -> dict[str, str]:
    """Parses the env file (see parse_env_file) into os.environ; returns what it set."""
    values = parse_env_file(path)
    os.environ.update(values)
    return values


def parse_env_file(path: Path) -> dict[str, str]:
    """Parses `export KEY=value` / `KEY=value` lines (no shell expansion); os.environ is untouched."""
    if not path.is_file():
        raise CommandError(
            f"env file {path} does not exist; start the local stack with `autopilot local serve` first",
            EXIT_NOT_FOUND,
        )
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        values[key.strip()] = value.strip().strip("'\"")
    return values


@dataclass
class StackOutputs:
    """The stack's outputs (OutputKey -> OutputValue): how every command finds its resources."""

    values: dict[str, str]
    source: str

    def find(self, key: str, required: bool = True) -> str | None:
        value = self.values.get(key)
        if value is None and required:
            raise CommandError(
                f"the stack ({self.source}) has no output {key}; deploy this version of the stack "
                "(`cdk deploy`) or restart `autopilot local serve`",
                EXIT_NOT_FOUND,
            )
        return value

    @classmethod
    def from_file(cls, path: Path) -> StackOutputs:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls({str(k): str(v) for k, v in data.get("outputs", {}).items()}, f"local stack file {path}")

    @classmethod
    def from_cloudformation(cls, client: Any, stack_name: str) -> StackOutputs:
        try:
            stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as error:
            if "does not exist" in str(error):
                raise CommandError(
                    f"stack {stack_name} does not exist in this account/region; deploy it with `cdk deploy` "
                    "or target the local stack with --local",
                    EXIT_NOT_FOUND,
                ) from error
            raise
        outputs = stacks[0].get("Outputs", []) if stacks else []
        return cls(
            {item["OutputKey"]: item["OutputValue"] for item in outputs if "OutputValue" in item},
            f"CloudFormation stack {stack_name}",
        )


class Context:
    """Clients and resources of the target, created lazily from the parsed options."""

    def __init__(self, args: argparse.Namespace, out: TextIO | None = None) -> None:
        self.args = args
        self.out = out or getattr(args, "out", None) or sys.stdout
        self.json = bool(getattr(args, "json", False))
        env_file = getattr(args, "env_file", None) or (
            DEFAULT_LOCAL_ENV if getattr(args, "local", False) else None
        )
        # A local stack (env file) has no SQS message move tasks and no service metrics.
        self.local = env_file is not None or bool(os.environ.get(ENV_STACK_FILE))
        if env_file is not None:
            load_env_file(Path(env_file))
        self.region = (
            getattr(args, "region", None)
            or os.environ.get("AWS_DEFAULT_REGION")
            or os.environ.get("AWS_REGION")
        )
        self._clients: dict[str, Any] = {}
        self._resources: StackOutputs | None = None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            config = Config(retries={"max_attempts": 5, "mode": "standard"}, user_agent_extra="autopilot-cli")
            self._clients[service] = boto3.client(service, region_name=self.region, config=config)  # type: ignore[call-overload]
        return self._clients[service]

    @property
    def resources(self) -> StackOutputs:
        """The stack's outputs: from the local stack file, or DescribeStacks on AWS."""
        if self._resources is None:
            stack_file = os.environ.get(ENV_STACK_FILE)
            if stack_file:
                self._resources = StackOutputs.from_file(Path(stack_file))
            else:
                self._resources = StackOutputs.from_cloudformation(
                    self.client("cloudformation"), getattr(self.args, "stack_name", STACK_NAME)
                )
        return self._resources

    # -- output ---------------------------------------------------------------------------------
    def emit(self, data: Any, text: str | Callable[[], str]) -> None:
        if self.json:
            self.out.write(json.dumps(data, indent=2, default=str) + "\n")
        else:
            self.out.write((text() if callable(text) else text).rstrip("\n") + "\n")
        self.out.flush()

    def progress(self, message: str) -> None:
        """Progress of long waits goes to stderr so that --json output stays parseable."""
        sys.stderr.write(message + "\n")
        sys.stderr.flush()

    def wait(self, check: Callable[[], Any], describe: Callable[[Any], str]) -> Any:
        """`poll` bounded by the command's --timeout and --interval, progress on stderr."""
        return poll(
            check, timeout_s=self.args.timeout, interval_s=self.args.interval, describe=describe, context=self
        )


def add_command(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    run: Callable[[Context], int | None],
    description: str | None = None,
    *,
    raw: bool = False,
    help: str | None = None,
) -> argparse.ArgumentParser:
    """A subcommand with the common options that runs `run` (through `run_command`).

    Its help is the first paragraph of `run`'s docstring and its description the rest, unless
    `help` or `description` is given; `raw` keeps the description's own line breaks.
    """
    summary, _, rest = inspect.cleandoc(run.__doc__ or "").partition("\n\n")
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        parents=[common_options()],
        help=help or " ".join(summary.split()),
        description=description or " ".join(rest.split()) or None,
        formatter_class=argparse.RawDescriptionHelpFormatter if raw else argparse.HelpFormatter,
    )
    parser.set_defaults(func=run_command(run))
    return parser


def confirmed(args: argparse.Namespace, consequence: str, *, export: str) -> None:
    """A destructive command goes on only with --yes; otherwise it says what it would do and what
    to export first."""
    if not args.yes:
        raise CommandError(
            f"{consequence}; add --yes to confirm (export {export} first: `autopilot dataset export`)",
            EXIT_USAGE,
        )


def run_command(func: Callable[[Context], int | None]) -> Callable[[argparse.Namespace], int]:
    """Wraps a command: builds the context and maps failures to messages and exit codes."""

    def runner(args: argparse.Namespace) -> int:
        try:
            context = Context(args)
            return int(func(context) or EXIT_OK)
        except CommandError as error:
            sys.stderr.write(f"error: {error}\n")
            return error.code
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", str(error))
            sys.stderr.write(f"error: {code}: {message}\n")
            return (
                EXIT_NOT_FOUND
                if code in ("ResourceNotFoundException", "NoSuchKey", "NotFound")
                else EXIT_FAILURE
            )
        except BotoCoreError as error:
            sys.stderr.write(f"error: {error} (check credentials, region and endpoints, or use --local)\n")
            return EXIT_FAILURE
        except KeyboardInterrupt:
            return 130

    return runner


def poll(
    check: Callable[[], Any],
    *,
    timeout_s: float,
    interval_s: float,
    describe: Callable[[Any], str] | None = None,
    context: Context | None = None,
) -> Any:
    """Calls `check` until it returns something truthy; bounded; reports progress to stderr."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if context is not None and describe is not None:
            message = describe(result)
            if message != last:
                context.progress(message)
                last = message
        time.sleep(interval_s)
    raise CommandError(f"gave up after {timeout_s:.0f} s", EXIT_TIMEOUT)


def iter_pages(
    call: Callable[..., dict[str, Any]], key: str, max_pages: int = 1000, **kwargs: Any
) -> Iterator[Any]:
    """Follows NextToken (bounded)."""
    return aws.iter_pages(call, key, max_pages=max_pages, **kwargs)


def project_arn(context: Context, project: str) -> dict[str, Any]:
    """DescribeProjects for one name; CommandError(EXIT_NOT_FOUND) if it does not exist."""
    described = (
        context.client("rekognition").describe_projects(ProjectNames=[project]).get("ProjectDescriptions", [])
    )
    if not described:
        raise CommandError(
            f"project {project!r} does not exist yet; "
            f"upload images under {project}/train/<label>/ to create it",
            EXIT_NOT_FOUND,
        )
    return dict(described[0])


def dataset_arn(context: Context, project: str, dataset_type: str) -> str:
    for dataset in project_arn(context, project).get("Datasets", []):
        if dataset["DatasetType"] == dataset_type.upper():
            return str(dataset["DatasetArn"])
    raise CommandError(f"project {project!r} has no {dataset_type.upper()} dataset yet", EXIT_NOT_FOUND)


def project_items(
    context: Context, project: str, prefix: str = "", keys_only: bool = False
) -> Iterator[dict[str, Any]]:
    """The project's items in the state table (all pages, strongly consistent), optionally only
    those whose sort key starts with `prefix`, or only their keys."""
    from lambdas.common.constants import PROJECT_PK_PREFIX, STATE_PK, STATE_SK

    condition = "#pk = :pk" + (" AND begins_with(#sk, :prefix)" if prefix else "")
    values: dict[str, Any] = {":pk": {"S": f"{PROJECT_PK_PREFIX}{project}"}}
    if prefix:
        values[":prefix"] = {"S": prefix}
    request: dict[str, Any] = {
        "TableName": context.resources.find(OUTPUT_STATE_TABLE),
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": {"#pk": STATE_PK, "#sk": STATE_SK},
        "ExpressionAttributeValues": values,
        "ConsistentRead": True,
    }
    if keys_only:
        request["ProjectionExpression"] = "#pk, #sk"
    elif not prefix:
        del request["ExpressionAttributeNames"]["#sk"]
    for _ in range(100_000):  # bounded: pages of up to 1 MB
        page = context.client("dynamodb").query(**request)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
