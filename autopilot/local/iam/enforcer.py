"""Enforcement: every SDK call, state machine task and service delivery checked against the template.

enforcer = Enforcer(extract_policies(template, resolver.resolve, account, region))
enforcer.install(session)                         # once, on the Session the handlers use
with enforcer.acting_as(enforcer.role_principal("IngestionHandlerRoleE2267DD5", "fn-name")):
    handler(event, context)                       # a denied call raises ClientError as AWS does
enforcer.check_task(principal, "arn:aws:states:::aws-sdk:rekognition:createProjectVersion", {...})
enforcer.check_delivery("s3.amazonaws.com", "sqs:SendMessage", queue_arn, source_arn=bucket_arn)
enforcer.recorder.summary()  # "IAM: 41 distinct (principal, action, resource) checked, 0 denied"
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from autopilot.local.iam.evaluator import Decision, Evaluator, Principal
from autopilot.local.iam.policies import Policies
from autopilot.local.iam.requests import Check, UnmappedOperation, checks_for, iam_prefix

# The error code each service returns for a denied request; AccessDeniedException elsewhere.
_ERROR_CODES = {
    "s3": "AccessDenied",
    "sqs": "AccessDenied",  # JSON protocol, query-compatible: the query code is what botocore reports
    "sns": "AuthorizationError",
    "cloudwatch": "AccessDenied",
    "sts": "AccessDenied",
    "iam": "AccessDenied",
}
# The code when the implied KMS use is refused (botocore's SQS and SNS models).
_KMS_ERROR_CODES = {"sqs": "KMS.AccessDeniedException", "sns": "KMSAccessDenied"}

_ACTING: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("iam_principal", default=None)


@dataclass(frozen=True)
class Denial:
    principal: str
    action: str
    resource: str
    reason: str

    def message(self) -> str:
        return (
            f"User: {self.principal} is not authorized to perform: {self.action} "
            f"on resource: {self.resource} {self.reason}"
        )


@dataclass
class Recorder:
    """Distinct (principal, action, resource) triples checked and denied (thread-safe)."""

    checked: set[tuple[str, str, str]] = field(default_factory=set)
    denied: dict[tuple[str, str, str], Denial] = field(default_factory=dict)
    unmapped: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, principal: str, action: str, resource: str, denial: Denial | None) -> None:
        with self._lock:
            self.checked.add((principal, action, resource))
            if denial is not None:
                self.denied[(principal, action, resource)] = denial

    def summary(self) -> str:
        checked, denied = len(self.checked), len(self.denied)
        return f"IAM: {checked} distinct (principal, action, resource) checked, {denied} denied"


class AccessDenied(Exception):
    """A delivery or task refused by the policies (a call raises botocore's ClientError instead)."""

    def __init__(self, denial: Denial) -> None:
        super().__init__(denial.message())
        self.denial = denial


class Enforcer:
    def __init__(self, policies: Policies, recorder: Recorder | None = None) -> None:
        self.policies = policies
        self.recorder = recorder or Recorder()
        self.evaluator = Evaluator()

    # -- principals -----------------------------------------------------------------------------
    def role_principal(self, role_logical_id: str, session: str) -> Principal:
        """A session of a template role, as Lambda (session = function name) or Step Functions assume it."""
        role = self.policies.role(role_logical_id)
        return Principal(
            arn=role.session_arn(session), account=self.policies.account, role_arn=role.arn, service=""
        )

    def principal_of(self, logical_id: str, session: str) -> Principal:
        """The session of the role a function, state machine or schedule of the template runs as."""
        if logical_id not in self.policies.assigned_roles:
            raise KeyError(f"{logical_id} names no role of the template")
        return self.role_principal(self.policies.assigned_roles[logical_id], session)

    def service_principal(self, service: str) -> Principal:
        return Principal(arn=service, account=self.policies.account, service=service)

    @contextlib.contextmanager
    def acting_as(self, principal: Principal | None) -> Iterator[None]:
        """SDK calls of this thread (and of tasks it copies its context to) run as `principal`."""
        token = _ACTING.set(principal)
        try:
            yield
        finally:
            _ACTING.reset(token)

    # -- checks ---------------------------------------------------------------------------------
    def authorize(
        self, principal: Principal, check: Check, extra_context: dict[str, Any] | None = None
    ) -> Denial | None:
        context = {**self._principal_context(principal), **check.context, **(extra_context or {})}
        decision = self._decide(principal, check, context)
        denial = (
            None if decision.allowed else Denial(principal.arn, check.action, check.resource, decision.reason)
        )
        self.recorder.record(principal.arn, check.action, check.resource, denial)
        return denial

    def _decide(self, principal: Principal, check: Check, context: dict[str, Any]) -> Decision:
        identity = [] if principal.is_service else self.policies.role_by_arn(principal.role_arn).statements
        if check.action.lower().startswith("kms:"):
            key_policy = self.policies.key_policy(check.resource)
            if key_policy is not None:
                return self.evaluator.decide(
                    principal, check.action, check.resource, context, identity, key_policy=key_policy
                )
        resource_policy = self.policies.resource_policy(check.resource)
        return self.evaluator.decide(
            principal, check.action, check.resource, context, identity, resource_policy
        )

    def _principal_context(self, principal: Principal) -> dict[str, Any]:
        if principal.is_service:
            return {"aws:PrincipalServiceName": principal.service}
        return {
            "aws:PrincipalArn": principal.role_arn,
            "aws:PrincipalAccount": principal.account,
            "aws:PrincipalType": "AssumedRole",
            "kms:CallerAccount": principal.account,
        }

    def check_call(
        self,
        principal: Principal,
        signing_name: str,
        operation: str,
        params: dict[str, Any],
        region: str | None = None,
    ) -> None:
        """Raises botocore's ClientError the way the service would when the call is denied."""
        prefix = iam_prefix(signing_name)
        try:
            checks = checks_for(prefix, operation, params, self.policies, region)
        except UnmappedOperation as error:
            self.recorder.unmapped.add(str(error))
            refusal = Denial(principal.arn, f"{prefix}:{operation}", "*", f"({error})")
            self.recorder.record(principal.arn, refusal.action, "*", refusal)
            raise _client_error(prefix, operation, refusal, implied=False) from None
        for check in checks:
            extra = (
                {"kms:ViaService": f"{prefix}.{region or self.policies.region}.amazonaws.com"}
                if check.implied
                else None
            )
            denial = self.authorize(principal, check, extra)
            if denial is not None:
                raise _client_error(prefix, operation, denial, implied=check.implied)

    def check_task(self, principal: Principal, task_resource: str, parameters: dict[str, Any]) -> None:
        """A Task state's call under the state machine role; raises ClientError when denied."""
        signing_name, operation = task_operation(task_resource)
        if ":function:" in task_resource:  # a function ARN as the Resource invokes that function
            parameters = {**parameters, "FunctionName": task_resource}
        self.check_call(principal, signing_name, operation, parameters)

    def check_delivery(
        self,
        service: str,
        action: str,
        resource: str,
        source_arn: str | None = None,
        source_account: str | None = None,
        extra_context: dict[str, Any] | None = None,
    ) -> Denial | None:
        """A delivery by an AWS service (s3/sns/events/cloudwatch.amazonaws.com) to a queue, topic or
        function, with the KMS use it implies for an encrypted target. Returns the first denial.

        `extra_context` adds request keys, e.g. {"s3:x-amz-acl": ...} for a service's S3 write.
        """
        principal = self.service_principal(service)
        context: dict[str, Any] = {
            "aws:SecureTransport": "true",
            "aws:SourceAccount": source_account or self.policies.account,
        }
        if source_arn:
            context["aws:SourceArn"] = source_arn
        context.update(extra_context or {})
        checks = [Check(action, resource, context)]
        key = self.policies.key_for(resource)
        if key and action in ("sqs:SendMessage", "sns:Publish"):
            checks += [
                Check("kms:GenerateDataKey", key, context, True),
                Check("kms:Decrypt", key, context, True),
            ]
        for check in checks:
            denial = self.authorize(principal, check)
            if denial is not None:
                return denial
        return None

    # -- botocore -------------------------------------------------------------------------------
    def install(
        self,
        client_or_session: Any,
        principal: Principal | Callable[[], Principal | None] | None = None,
    ) -> None:
        """Checks every call of a client (or of every client a Session creates from now on).

        With a `principal`, calls run as it; with a callable, as what it returns for the calling
        thread; without, as the principal `acting_as` set. A call with no principal (the runtime's
        own) is not checked.
        """
        events = (
            client_or_session.meta.events if hasattr(client_or_session, "meta") else client_or_session.events
        )
        client_region = getattr(getattr(client_or_session, "meta", None), "region_name", None)

        def before_call(params: dict[str, Any], model: Any, **_: Any) -> None:
            acting = principal() if callable(principal) else (principal or _ACTING.get())
            if acting is None:
                return
            service = model.service_model
            signing = service.signing_name or service.endpoint_prefix
            self.check_call(acting, signing, model.name, params, client_region)

        events.register("provide-client-params", before_call, unique_id=f"autopilot-iam-{id(self)}")


def task_operation(task_resource: str) -> tuple[str, str]:
    """(signing name, operation) of a Task state's Resource (optimized and aws-sdk integrations)."""
    match = re.match(r"arn:[^:]+:states:::(aws-sdk:)?([a-z0-9-]+):([A-Za-z0-9]+)(\.[\w:]+)?$", task_resource)
    if match is None:
        if ":lambda:" in task_resource and ":function:" in task_resource:
            return "lambda", "Invoke"
        raise ValueError(f"not a Step Functions service integration: {task_resource}")
    service, api = match.group(2), match.group(3)
    operation = api[0].upper() + api[1:]
    return {"sfn": "states", "stepfunctions": "states"}.get(service, service), operation


def _client_error(prefix: str, operation: str, denial: Denial, implied: bool) -> ClientError:
    code = (
        _KMS_ERROR_CODES.get(prefix, "AccessDeniedException")
        if implied
        else _ERROR_CODES.get(prefix, "AccessDeniedException")
    )
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": denial.message()},
        "ResponseMetadata": {"HTTPStatusCode": 400 if implied else 403, "RequestId": str(uuid.uuid4())},
    }
    # A class named by the code, as botocore's modeled exceptions are (`client.exceptions.X`): a
    # Step Functions task names its error after it (`Rekognition.AccessDeniedException`).
    return _error_class(code)(response, operation)  # type: ignore[arg-type]


@functools.cache
def _error_class(code: str) -> type[ClientError]:
    return type(code.replace(".", ""), (ClientError,), {})
