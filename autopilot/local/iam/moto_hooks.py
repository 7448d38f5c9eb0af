"""Where moto acts as a service on the stack's behalf, the checks the service's IAM would make.

- Step Functions tasks: moto's interpreter calls each Task's service with its own boto3 clients,
  in threads of its own. `StateTaskService._eval_service_task` of every integration (aws-sdk,
  sns, lambda, dynamodb, sfn ...) is wrapped so the call is first checked under the state
  machine's role; a denial raises the ClientError the service would return, which the task turns
  into its error (`Rekognition.AccessDeniedException` for an aws-sdk task, as on AWS: the service
  name and the error code in PascalCase, "Learning to use AWS service SDK integrations").
- S3 notifications to SQS and SNS, and SNS subscriptions to SQS: moto delivers them inside its
  backends. `moto.s3.notifications._send_sqs_message` / `_send_sns_message` and
  `moto.sns.models.Subscription.publish` are wrapped so a delivery the queue or topic policy (or
  its key's policy) refuses is not made.

Each hook asks the one active `Gate` (the runtime's) and does nothing when there is none. They are
installed once per process; a moto upgrade that moves one of these points makes `install()` fail
loudly instead of silently running unchecked.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any, Protocol

_TASK_BASE = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service"
_TASK_FACTORY = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_factory"
)
_LOCK = threading.Lock()
_INSTALLED: list[str] = []
_GATES: list[Gate] = []


class Gate(Protocol):
    """What the hooks ask the runtime."""

    def check_task(self, state_machine_arn: str, task_resource: str, parameters: dict[str, Any]) -> None:
        """Raises the service's ClientError when the state machine's role may not make the call."""

    def allows_delivery(self, service: str, action: str, target_arn: str, source_arn: str) -> bool:
        """False (and the refusal recorded) when the target's policies refuse the delivery."""


def open_gate(gate: Gate) -> None:
    install()
    with _LOCK:
        _GATES.append(gate)


def close_gate(gate: Gate) -> None:
    with _LOCK:
        if gate in _GATES:
            _GATES.remove(gate)


def _gate() -> Gate | None:
    return _GATES[-1] if _GATES else None


def install() -> None:
    """Wraps the moto points above (idempotent)."""
    with _LOCK:
        if _INSTALLED:
            return
        _wrap_tasks()
        _wrap_s3_notifications()
        _wrap_sns_subscriptions()
        _INSTALLED.append("moto")


def _moved(where: str) -> RuntimeError:
    return RuntimeError(
        f"{where} is not where autopilot/local/iam/moto_hooks.py expects it (a different moto version?): "
        "the offline IAM checks cannot see this call; adapt the hook"
    )


def _wrap_tasks() -> None:
    base = getattr(importlib.import_module(_TASK_BASE), "StateTaskService", None)
    importlib.import_module(_TASK_FACTORY)  # imports every integration class
    if base is None or "_eval_service_task" not in vars(base):
        raise _moved(f"{_TASK_BASE}.StateTaskService._eval_service_task")
    pending = list(base.__subclasses__())
    wrapped = 0
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        original = vars(cls).get("_eval_service_task")
        if original is None or getattr(original, "_iam_checked", False):
            continue
        cls._eval_service_task = _checked_task(original)
        wrapped += 1
    if not wrapped:
        raise _moved("the Step Functions service integrations (no _eval_service_task found)")


def _checked_task(original: Any) -> Any:
    def _eval_service_task(self: Any, env: Any, *args: Any, **kwargs: Any) -> Any:
        gate = _gate()
        if gate is not None:
            parameters = kwargs["normalised_parameters"] if "normalised_parameters" in kwargs else args[1]
            context = env.states.context_object.context_object_data
            gate.check_task(str(context["StateMachine"]["Id"]), str(self.resource.resource_arn), parameters)
        return original(self, env, *args, **kwargs)

    _eval_service_task._iam_checked = True  # type: ignore[attr-defined]
    return _eval_service_task


def _wrap_s3_notifications() -> None:
    from moto.s3 import notifications

    for name, action, to_arn in (
        ("_send_sqs_message", "sqs:SendMessage", _queue_arn),
        ("_send_sns_message", "sns:Publish", lambda topic, *_: topic),
    ):
        original = getattr(notifications, name, None)
        if original is None:
            raise _moved(f"moto.s3.notifications.{name}")
        setattr(notifications, name, _checked_notification(original, action, to_arn))


def _queue_arn(queue_name: str, account_id: str, region: str) -> str:
    return f"arn:aws:sqs:{region}:{account_id}:{queue_name}"


def _checked_notification(original: Any, action: str, to_arn: Any) -> Any:
    def send(account_id: str, event_body: Any, target: str, region_name: str) -> None:
        gate = _gate()
        if gate is not None:
            records = (event_body or {}).get("Records") or [{}]
            bucket = str(((records[0].get("s3") or {}).get("bucket") or {}).get("arn", ""))
            arn = to_arn(target, account_id, region_name)
            if not gate.allows_delivery("s3.amazonaws.com", action, arn, bucket):
                return
        original(account_id, event_body, target, region_name)

    return send


def _wrap_sns_subscriptions() -> None:
    from moto.sns import models

    subscription = getattr(models, "Subscription", None)
    original = vars(subscription).get("publish") if subscription is not None else None
    if original is None:
        raise _moved("moto.sns.models.Subscription.publish")

    def publish(self: Any, *args: Any, **kwargs: Any) -> None:
        gate = _gate()
        if gate is not None and self.protocol == "sqs":
            topic = self.topic.arn
            if not gate.allows_delivery("sns.amazonaws.com", "sqs:SendMessage", self.endpoint, topic):
                return
        original(self, *args, **kwargs)

    subscription.publish = publish  # type: ignore[union-attr]
