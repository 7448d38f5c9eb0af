"""The runtime's side of the offline IAM checks, so that wiring them takes a few lines.

    iam = RuntimeEnforcement(template, resolver, account, region)   # after physical ids are assigned
    iam.activate()                      # every boto3 Session created from now on checks its calls
    with iam.invocation(function_name): # around each handler run: its calls run as its role
        handler(event, context)
    iam.deliver("s3.amazonaws.com", "sqs:SendMessage", queue_arn, source_arn=bucket_arn)  # or AccessDenied
    iam.task(state_machine_logical_id, task_resource, parameters)   # or ClientError
    iam.summary()
    iam.deactivate()

Calls made outside `invocation` (the runtime provisioning, the CLI, moto's own clients) carry no
principal and are not checked.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import boto3

from autopilot.local.iam.enforcer import _ACTING, AccessDenied, Enforcer
from autopilot.local.iam.evaluator import Principal
from autopilot.local.iam.policies import extract_policies

_LOCK = threading.Lock()
_ACTIVE: list[Enforcer] = []  # the enforcer new Sessions route to (the last activated wins)
_PATCHED: dict[str, Any] = {}
_HOOK_ID = "autopilot-iam"


class RuntimeEnforcement:
    def __init__(self, template: dict[str, Any], resolver: Any, account: str, region: str) -> None:
        self.enforcer = Enforcer(extract_policies(template, resolver.resolve, account, region))
        self._functions: dict[str, Principal] = {}
        for logical_id, resource in dict(template.get("Resources") or {}).items():
            if (
                resource.get("Type") == "AWS::Lambda::Function"
                and logical_id in self.enforcer.policies.assigned_roles
            ):
                name = str(resolver.resolve({"Ref": logical_id}))
                self._functions[name] = self.enforcer.principal_of(logical_id, name)

    # -- Lambda ---------------------------------------------------------------------------------
    def function_principal(self, function_name_or_arn: str) -> Principal | None:
        name = function_name_or_arn
        if name.startswith("arn:"):
            name = name.split(":")[6]
        return self._functions.get(name.split(":", 1)[0])

    @contextlib.contextmanager
    def invocation(self, function_name_or_arn: str) -> Iterator[None]:
        with self.enforcer.acting_as(self.function_principal(function_name_or_arn)):
            yield

    # -- Step Functions -------------------------------------------------------------------------
    def task(self, state_machine_logical_id: str, task_resource: str, parameters: dict[str, Any]) -> None:
        principal = self.enforcer.principal_of(state_machine_logical_id, "execution")
        self.enforcer.check_task(principal, task_resource, parameters)

    # -- deliveries -----------------------------------------------------------------------------
    def deliver(
        self,
        service: str,
        action: str,
        target_arn: str,
        source_arn: str | None = None,
        extra_context: dict[str, Any] | None = None,
    ) -> None:
        """Raises AccessDenied when the target's policies (and its key's) refuse the delivery."""
        denial = self.enforcer.check_delivery(
            service, action, target_arn, source_arn, extra_context=extra_context
        )
        if denial is not None:
            raise AccessDenied(denial)

    def deliver_as_role(self, role_logical_id: str, action: str, target_arn: str) -> None:
        """A delivery made with a role (Scheduler targets, EventBridge targets with a RoleArn)."""
        principal = self.enforcer.role_principal(role_logical_id, "delivery")
        prefix, operation = action.split(":", 1)
        member = {"lambda": "FunctionName", "sqs": "QueueUrl", "sns": "TopicArn", "states": "stateMachineArn"}
        operation = {"InvokeFunction": "Invoke"}.get(operation, operation)
        self.enforcer.check_call(
            principal, prefix, operation, {member.get(prefix, "ResourceArn"): target_arn}
        )

    # -- SDK calls ------------------------------------------------------------------------------
    def activate(self) -> None:
        """Routes the calls of every boto3 Session created from now on through this enforcer."""
        with _LOCK:
            _ACTIVE.append(self.enforcer)
            if "init" not in _PATCHED:
                _PATCHED["init"] = boto3.session.Session.__init__

                def init(session: Any, *args: Any, **kwargs: Any) -> None:
                    _PATCHED["init"](session, *args, **kwargs)
                    session.events.register("provide-client-params", _check, unique_id="autopilot-iam")

                boto3.session.Session.__init__ = init  # type: ignore[method-assign]
            # The default Session (`boto3.client(...)`) may predate this: its new clients check too.
            if boto3.DEFAULT_SESSION is not None:
                boto3.DEFAULT_SESSION.events.register("provide-client-params", _check, unique_id=_HOOK_ID)

    def deactivate(self) -> None:
        with _LOCK:
            if self.enforcer in _ACTIVE:
                _ACTIVE.remove(self.enforcer)
            if not _ACTIVE and "init" in _PATCHED:
                boto3.session.Session.__init__ = _PATCHED.pop("init")  # type: ignore[method-assign]
                if boto3.DEFAULT_SESSION is not None:
                    boto3.DEFAULT_SESSION.events.unregister("provide-client-params", unique_id=_HOOK_ID)

    def summary(self) -> str:
        return self.enforcer.recorder.summary()


def _check(params: dict[str, Any], model: Any, **_: Any) -> None:
    principal = _ACTING.get()
    if principal is None or not _ACTIVE:
        return
    service = model.service_model
    _ACTIVE[-1].check_call(principal, service.signing_name or service.endpoint_prefix, model.name, params)
