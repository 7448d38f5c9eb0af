"""Starts a Step Functions execution of one state machine (training, model control)."""

from __future__ import annotations

import json
from typing import Any

from lambdas.common import aws


class ExecutionStarter:
    """`start(name, payload)` starts an execution named `name` with `payload` as its input and
    returns the execution ARN; the name makes a repeated start of the same request a no-op."""

    def __init__(self, state_machine_arn: str, client: Any | None = None) -> None:
        self.state_machine_arn = state_machine_arn
        self._client = client

    def start(self, name: str, payload: dict[str, Any]) -> str:
        client = self._client or aws.client("stepfunctions")
        response = client.start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(payload)
        )
        return str(response["executionArn"])
