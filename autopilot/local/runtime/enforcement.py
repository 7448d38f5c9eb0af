"""IAM enforced in the running stack: the runtime's side of `autopilot.local.iam`.

Each handler runs as its function's role (the Lambda service's invocation scope), each Step
Functions task under its state machine's role and each delivery (S3, SNS, EventBridge, Scheduler,
an event source mapping's receive, an asynchronous invocation's failure destination) under the
principal AWS would use, against the policies of the synthesized template. A refused delivery is
not made; the timeline and the run's errors say so. `summary()` gives the figures of the run.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import ClientError

from autopilot.local.iam import moto_hooks
from autopilot.local.iam.enforcer import AccessDenied
from autopilot.local.iam.runtime_hooks import RuntimeEnforcement
from autopilot.local.runtime.context import StackContext

# The action a delivery to a target of each service needs.
_TARGET_ACTIONS = {
    "lambda": "lambda:InvokeFunction",
    "sqs": "sqs:SendMessage",
    "sns": "sns:Publish",
    "states": "states:StartExecution",
    "events": "events:PutEvents",
}


class StackEnforcement:
    """Built once the physical ids are assigned; `activate()` before any handler runs."""

    def __init__(self, ctx: StackContext) -> None:
        self.ctx = ctx
        self.iam = RuntimeEnforcement(ctx.template, ctx.resolver, ctx.account, ctx.region)
        self.policies = self.iam.enforcer.policies
        self.refused: list[str] = []
        self._lock = threading.Lock()
        self._stack_queues = {
            str(ctx.resolver.attributes.get((lid, "Arn"))) for lid in ctx.of_type("AWS::SQS::Queue")
        }
        self._stack_topics = {
            str(ctx.resolver.physical_ids.get(lid)) for lid in ctx.of_type("AWS::SNS::Topic")
        }
        self._machines: dict[str, str] = {}
        self._mapping_verdicts: dict[str, bool] = {}

    # -- life cycle -----------------------------------------------------------------------------
    def activate(self) -> None:
        self._machines = {arn: lid for lid, arn in self.ctx.state_machines.items()}
        self.iam.activate()
        moto_hooks.open_gate(self)
        self.ctx.lambdas.invocation_scope = self.iam.invocation

    def deactivate(self) -> None:
        if self.ctx.lambdas.invocation_scope == self.iam.invocation:
            self.ctx.lambdas.invocation_scope = None
        moto_hooks.close_gate(self)
        self.iam.deactivate()

    # -- moto's side (tasks, S3 and SNS deliveries) ---------------------------------------------
    def check_task(self, state_machine_arn: str, task_resource: str, parameters: dict[str, Any]) -> None:
        logical_id = self._machines.get(state_machine_arn)
        if logical_id is None or logical_id not in self.policies.assigned_roles:
            return  # not a state machine of the template
        try:
            self.iam.task(logical_id, task_resource, parameters)
        except ClientError as denied:
            self._refuse(f"task {task_resource} of {logical_id}: {denied}")
            raise

    def allows_delivery(self, service: str, action: str, target_arn: str, source_arn: str) -> bool:
        if target_arn not in self._stack_queues and target_arn not in self._stack_topics:
            return True  # the runtime's own tap and observer queues stand in for Lambda targets
        return self.delivery_allowed(service, action, target_arn, source_arn)

    # -- the runtime's deliveries ----------------------------------------------------------------
    def delivery_allowed(self, service: str, action: str, target_arn: str, source_arn: str | None) -> bool:
        """A delivery by an AWS service (its resource policy, and its key's, must allow it)."""
        try:
            self.iam.deliver(service, action, target_arn, source_arn=source_arn)
        except AccessDenied as denied:
            self._refuse(f"{service} -> {target_arn} not delivered: {denied}")
            return False
        return True

    def target_allowed(self, source_logical_id: str | None, target_arn: str, role_arn: str | None) -> bool:
        """A rule's or a schedule's delivery to `target_arn`: with the target's role when it names one
        (Scheduler always does), else as events.amazonaws.com against the target's resource policy."""
        if source_logical_id is None:
            return True
        service = target_arn.split(":")[2] if target_arn.startswith("arn:") else ""
        if role_arn:
            return self._as_role(role_arn, target_arn, service)
        action = _TARGET_ACTIONS.get(service)
        if action is None:
            return True
        source_arn = str(self.ctx.resolver.attributes.get((source_logical_id, "Arn"), ""))
        return self.delivery_allowed("events.amazonaws.com", action, target_arn, source_arn)

    def _as_role(self, role_arn: str, target_arn: str, service: str) -> bool:
        try:
            role = self.policies.role_by_arn(role_arn)
        except KeyError:
            self._refuse(f"delivery to {target_arn}: the role {role_arn} is not a role of the template")
            return False
        principal = self.iam.enforcer.role_principal(role.logical_id, "delivery")
        try:
            if target_arn.startswith("arn:aws:scheduler:::aws-sdk:"):
                return True  # a universal target: checked on its call, see `acting_as_role`
            action = _TARGET_ACTIONS.get(service)
            if action is None:
                return True
            self.iam.deliver_as_role(role.logical_id, action, target_arn)
        except ClientError as denied:
            self._refuse(f"delivery to {target_arn} as {principal.arn} refused: {denied}")
            return False
        return True

    def call_allowed(self, role_arn: str, service: str, operation: str, parameters: dict[str, Any]) -> bool:
        """A call a service makes with a role (a universal Scheduler target)."""
        try:
            role = self.policies.role_by_arn(role_arn)
            principal = self.iam.enforcer.role_principal(role.logical_id, "delivery")
            self.iam.enforcer.check_call(principal, service, operation, parameters)
        except KeyError:
            self._refuse(f"{service}:{operation}: the role {role_arn} is not a role of the template")
            return False
        except ClientError as denied:
            self._refuse(f"{service}:{operation} refused: {denied}")
            return False
        return True

    def function_call_allowed(
        self, function_name: str, service: str, operation: str, parameters: dict[str, Any]
    ) -> bool:
        """A call Lambda makes with the function's execution role (its event source mapping's
        receives, its failure destination and dead-letter queue)."""
        principal = self.iam.function_principal(function_name)
        if principal is None:
            return True  # a function without a role of the template (CDK's own providers)
        try:
            self.iam.enforcer.check_call(principal, service, operation, parameters)
        except ClientError as denied:
            self._refuse(f"{service}:{operation} for {function_name} refused: {denied}")
            return False
        return True

    def mapping_allowed(self, function_name: str, queue_url: str) -> bool:
        """The event source mapping's poller receives and deletes with the function's role (checked
        once per mapping: the policies do not change while the stack runs)."""
        key = f"{function_name} {queue_url}"
        if key not in self._mapping_verdicts:
            self._mapping_verdicts[key] = all(
                self.function_call_allowed(function_name, "sqs", operation, {"QueueUrl": queue_url})
                for operation in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")
            )
        return self._mapping_verdicts[key]

    def _refuse(self, text: str) -> None:
        with self._lock:
            self.refused.append(text)
        self.ctx.errors.append(f"IAM: {text}")
        self.ctx.note("iam", text)

    # -- figures ----------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        recorder = self.iam.enforcer.recorder
        return {
            "checked": len(recorder.checked),
            "denied": len(recorder.denied),
            "denials": sorted(denial.message() for denial in recorder.denied.values()),
            "unmapped": sorted(recorder.unmapped),
            "unknown_condition_keys": sorted(self.iam.enforcer.evaluator.unknown_condition_keys),
            "unevaluated_managed_policies": sorted(self.policies.unevaluated_managed),
        }
