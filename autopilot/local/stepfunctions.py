"""Step Functions state machines from the synthesized template, run in moto's ASL interpreter.

    arns = create_state_machines(sfn_client, resolver)          # logical id -> ARN
    result = run_execution(sfn_client, arns["TrainingStateMachine..."], {"project": "digits"})
    result.status, result.output, result.history

moto must run with `mock_aws(config={"stepfunctions": {"execute_state_machine": True}})` (or the
equivalent server setting); `lambda:invoke` tasks need AWS_ENDPOINT_URL_LAMBDA pointing at a
LocalLambdaService, Rekognition SDK tasks AWS_ENDPOINT_URL_REKOGNITION at the local engine.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from autopilot.local.template import Resolver, physical_name, resource_enabled

STATE_MACHINE_TYPE = "AWS::StepFunctions::StateMachine"
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@dataclass
class ExecutionResult:
    execution_arn: str
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def states_entered(self) -> list[str]:
        """Names of the states entered, in order (handy for tests and the timeline)."""
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in self.history
            if "stateEnteredEventDetails" in event
        ]


class ExecutionTimeoutError(TimeoutError):
    pass


def state_machine_name(logical_id: str) -> str:
    return physical_name(logical_id, max_length=80)


def state_machine_arn(logical_id: str, account: str = "123456789012", region: str = "us-east-1") -> str:
    return f"arn:aws:states:{region}:{account}:stateMachine:{state_machine_name(logical_id)}"


def assign_state_machine_ids(resolver: Resolver) -> None:
    """Registers Ref (ARN) and Fn::GetAtt (Arn, Name) of every state machine with the resolver.

    Done before anything is created, so Lambda environments can reference state machines and
    state machines can reference each other.
    """
    for logical_id in resolver.resources_of_type(STATE_MACHINE_TYPE):
        arn = state_machine_arn(logical_id, resolver.account, resolver.region)
        resolver.physical_ids[logical_id] = arn
        resolver.attributes[(logical_id, "Arn")] = arn
        resolver.attributes[(logical_id, "Name")] = state_machine_name(logical_id)
        resolver.attributes[(logical_id, "StateMachineRevisionId")] = "1"


def definition_of(resolver: Resolver, logical_id: str) -> dict[str, Any]:
    """The resolved ASL definition (DefinitionString, or Definition + DefinitionSubstitutions)."""
    props = resolver.properties(logical_id)
    if "DefinitionString" in props:
        text = resolver.resolve(props["DefinitionString"])
        definition = json.loads(text) if isinstance(text, str) else text
    elif "Definition" in props:
        definition = resolver.resolve(props["Definition"])
    else:
        raise ValueError(f"state machine {logical_id} has neither DefinitionString nor Definition")
    substitutions = resolver.resolve(props.get("DefinitionSubstitutions") or {})
    if substitutions:
        text = json.dumps(definition)
        for key, value in substitutions.items():
            text = text.replace("${" + key + "}", str(value))
        definition = json.loads(text)
    return dict(definition)


def create_state_machines(sfn_client: Any, resolver: Resolver) -> dict[str, str]:
    """Creates every (enabled) state machine of the template; returns logical id -> ARN."""
    assign_state_machine_ids(resolver)
    created: dict[str, str] = {}
    for logical_id in resolver.resources_of_type(STATE_MACHINE_TYPE):
        if not resource_enabled(resolver, logical_id):
            continue
        props = resolver.properties(logical_id)
        role = props.get("RoleArn")
        role_arn = resolver.resolve(role) if role else ""
        if not isinstance(role_arn, str) or not role_arn.startswith("arn:"):
            role_arn = f"arn:aws:iam::{resolver.account}:role/{physical_name(logical_id)}"
        response = sfn_client.create_state_machine(
            name=state_machine_name(logical_id),
            definition=json.dumps(definition_of(resolver, logical_id)),
            roleArn=role_arn,
            type=props.get("StateMachineType", "STANDARD"),
        )
        created[logical_id] = response["stateMachineArn"]
    return created


def start_execution(
    sfn_client: Any, state_machine_arn: str, payload: Any = None, name: str | None = None
) -> str:
    kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn, "input": json.dumps(payload or {})}
    if name:
        kwargs["name"] = name
    return str(sfn_client.start_execution(**kwargs)["executionArn"])


def wait_for_execution(
    sfn_client: Any, execution_arn: str, timeout_s: float = 120, poll_s: float = 0.1
) -> ExecutionResult:
    """Polls DescribeExecution until a terminal status; raises ExecutionTimeoutError after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = sfn_client.describe_execution(executionArn=execution_arn)
        if described["status"] in TERMINAL_STATUSES:
            break
        if time.monotonic() >= deadline:
            raise ExecutionTimeoutError(
                f"execution {execution_arn} still {described['status']} after {timeout_s:.0f} s"
            )
        time.sleep(poll_s)
    output = described.get("output")
    return ExecutionResult(
        execution_arn=execution_arn,
        status=described["status"],
        output=json.loads(output) if output else None,
        error=described.get("error"),
        cause=described.get("cause"),
        history=execution_history(sfn_client, execution_arn),
    )


def execution_history(sfn_client: Any, execution_arn: str, max_pages: int = 50) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    for _ in range(max_pages):
        page = sfn_client.get_execution_history(**kwargs)
        events.extend(page.get("events", []))
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    return events


def run_execution(
    sfn_client: Any, state_machine_arn: str, payload: Any = None, timeout_s: float = 120, poll_s: float = 0.1
) -> ExecutionResult:
    return wait_for_execution(
        sfn_client, start_execution(sfn_client, state_machine_arn, payload), timeout_s, poll_s
    )
