"""Step Functions events: the runtime watches every execution of the stack's state machines and
sends the "Step Functions Execution Status Change" event AWS sends to the default bus (moto does not)."""

from __future__ import annotations

import json
import logging
from typing import Any

from autopilot.local.runtime.context import StackContext, short_name

logger = logging.getLogger(__name__)


class ExecutionEvents:
    def __init__(self, ctx: StackContext) -> None:
        self.ctx = ctx

    def watch(self) -> None:
        """Notes and emits every status change since the last round."""
        sfn = self.ctx.client("stepfunctions")
        for lid, arn in self.ctx.state_machines.items():
            for execution in sfn.list_executions(stateMachineArn=arn, maxResults=100).get("executions", []):
                status = execution["status"]
                if self.ctx.executions.get(execution["executionArn"]) != status:
                    self.ctx.executions[execution["executionArn"]] = status
                    self.ctx.note("stepfunctions", f"{short_name(lid)} execution {status.lower()}")
                    self._emit_status_change(sfn, execution, arn)

    def _emit_status_change(self, sfn: Any, execution: dict[str, Any], machine_arn: str) -> None:
        try:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
        except Exception as error:  # moto cannot serialize some outputs (datetimes); send what is known
            logger.debug("describe_execution failed: %s", error)
            described = {
                "status": execution["status"],
                "startDate": execution["startDate"],
                "stopDate": execution.get("stopDate"),
            }
        detail = {
            "executionArn": execution["executionArn"],
            "stateMachineArn": machine_arn,
            "name": execution.get("name"),
            "status": described["status"],
            "startDate": int(described["startDate"].timestamp() * 1000),
            "stopDate": int(described["stopDate"].timestamp() * 1000) if described.get("stopDate") else None,
            "input": described.get("input"),
            "output": described.get("output"),
            "error": described.get("error"),
            "cause": described.get("cause"),
        }
        self.ctx.client("events").put_events(
            Entries=[
                {
                    "Source": "aws.states",
                    "DetailType": "Step Functions Execution Status Change",
                    "Detail": json.dumps(detail),
                    "Resources": [execution["executionArn"]],
                }
            ]
        )
