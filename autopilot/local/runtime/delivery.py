"""Target delivery and asynchronous invocations: what EventBridge, S3 and SNS do with a matched
event or a message that moto routed to a tap queue (Lambda, Step Functions, SNS, SQS, event bus
and universal aws-sdk targets; Input, InputPath, InputTransformer), and Lambda's asynchronous
invocation semantics (retries, then the OnFailure destination or the dead-letter queue)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from autopilot.local.runtime.context import StackContext, short_name
from autopilot.local.runtime.providers import lambda_functions
from autopilot.local.wiring import Published, Tap, Target


class Delivery:
    def __init__(self, ctx: StackContext) -> None:
        self.ctx = ctx

    # -- tap queues -----------------------------------------------------------------------------
    def dispatch(self, tap: Tap, message: dict[str, Any]) -> None:
        """Hands one message of a tap queue on, as the routing service would have."""
        try:
            body = json.loads(message["Body"])
        except ValueError:
            self.ctx.errors.append(f"tap {tap.kind}: unreadable message {message['Body'][:200]!r}")
            return
        if tap.kind == "observer":
            self._observe(tap, body)
        elif tap.kind == "s3-lambda":
            if body.get("Event") == "s3:TestEvent":
                return
            record = (body.get("Records") or [{}])[0]
            bucket = str(((record.get("s3") or {}).get("bucket") or {}).get("arn", ""))
            for target in tap.targets:
                if self._service_may_invoke("s3.amazonaws.com", target.arn, bucket):
                    self.invoke_async(target.arn, body)
        elif tap.kind == "sns-lambda":
            for target in tap.targets:
                if self._service_may_invoke("sns.amazonaws.com", target.arn, str(body.get("TopicArn", ""))):
                    self.invoke_async(target.arn, sns_event(body, tap.subscription_arn))
        elif tap.kind == "rule":
            self.ctx.note("events", f"{body.get('detail-type', 'event')} matched {tap.source_logical_id}")
            for target in tap.targets:
                self.deliver(target, body, tap.source_logical_id)

    def _service_may_invoke(self, service: str, function_arn: str, source_arn: str) -> bool:
        """The function's resource policy (AWS::Lambda::Permission) must let the service invoke it."""
        iam = self.ctx.iam
        return iam is None or bool(
            iam.delivery_allowed(service, "lambda:InvokeFunction", function_arn, source_arn)
        )

    def _observe(self, tap: Tap, body: dict[str, Any]) -> None:
        attributes = {
            name: str(value.get("Value")) for name, value in (body.get("MessageAttributes") or {}).items()
        }
        published = Published(
            topic_logical_id=tap.source_logical_id,
            topic_arn=str(body.get("TopicArn", "")),
            subject=body.get("Subject"),
            message=str(body.get("Message", "")),
            attributes=attributes,
            received_at=time.monotonic(),
        )
        self.ctx.published.append(published)
        self.ctx.note("sns", describe_publication(published))

    # -- targets --------------------------------------------------------------------------------
    def deliver(self, target: Target, event: Any, source_logical_id: str | None = None) -> None:
        """Delivers to one target of the rule or schedule `source_logical_id`, if IAM lets it."""
        payload = target_input(target, event)
        arn = target.arn
        ctx = self.ctx
        if ctx.iam is not None and not ctx.iam.target_allowed(source_logical_id, arn, target.role_arn):
            return
        try:
            if arn.startswith("arn:aws:lambda:"):
                self.invoke_async(arn, payload, target.dead_letter_arn)
            elif arn.startswith("arn:aws:states:"):
                started = ctx.client("stepfunctions").start_execution(
                    stateMachineArn=arn, input=json.dumps(payload)
                )
                ctx.executions[started["executionArn"]] = "RUNNING"
                ctx.note("stepfunctions", f"started {arn.rsplit(':', 1)[1]}")
            elif arn.startswith("arn:aws:sns:"):
                ctx.client("sns").publish(TopicArn=arn, Message=json.dumps(payload))
            elif arn.startswith("arn:aws:sqs:"):
                ctx.client("sqs").send_message(QueueUrl=ctx.queue_url(arn), MessageBody=json.dumps(payload))
            elif arn.startswith("arn:aws:events:"):
                entry = payload if isinstance(payload, dict) else {}
                ctx.client("events").put_events(
                    Entries=[
                        {
                            "Source": str(entry.get("source", "local")),
                            "DetailType": str(entry.get("detail-type", "local")),
                            "Detail": json.dumps(entry.get("detail", {})),
                            "EventBusName": arn.rsplit("/", 1)[-1],
                        }
                    ]
                )
            elif arn.startswith("arn:aws:scheduler:::aws-sdk:"):
                self._universal_target(arn, payload, target.role_arn)
            else:
                ctx.errors.append(f"target {arn}: not supported by the local runtime")
        except Exception as error:  # a failed delivery is recorded and shown; the pump goes on
            ctx.errors.append(f"delivery to {arn} failed: {type(error).__name__}: {error}")
            ctx.note("runtime", f"delivery to {arn} failed: {error}")

    def _universal_target(self, arn: str, payload: Any, role_arn: str | None) -> None:
        service, action = arn.split("aws-sdk:", 1)[1].split(":", 1)
        iam = self.ctx.iam
        if (
            iam is not None
            and role_arn
            and not iam.call_allowed(role_arn, service, action[0].upper() + action[1:], dict(payload or {}))
        ):
            return
        operation = re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()
        client_name = {"sfn": "stepfunctions"}.get(service, service)
        result = getattr(self.ctx.client(client_name), operation)(**(payload or {}))
        if isinstance(result, dict) and "executionArn" in result:
            self.ctx.executions[result["executionArn"]] = "RUNNING"

    def invoke_async(self, function: str, event: Any, dead_letter_arn: str | None = None) -> None:
        """Asynchronous invocation semantics: retries (two, or the function's EventInvokeConfig
        MaximumRetryAttempts), then its OnFailure destination or dead-letter queue."""
        ctx = self.ctx
        name = ctx.lambdas.lookup(function).name
        retries, on_failure = lambda_functions.event_invoke_config(ctx, name)
        record = None
        for _attempt in range(1 + retries):
            record = ctx.lambdas.invoke(name, event, invocation_type="Event")
            if record.error is None:
                return
        target = dead_letter_arn or on_failure or lambda_functions.dead_letter_target(ctx, name)
        if target and target.startswith("arn:aws:sqs:"):
            url = ctx.queue_url(target)
            if self._function_may("sqs", "SendMessage", name, {"QueueUrl": url}, dead_letter_arn):
                ctx.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(event))
        elif (
            target
            and target.startswith("arn:aws:sns:")
            and self._function_may("sns", "Publish", name, {"TopicArn": target}, dead_letter_arn)
        ):
            ctx.client("sns").publish(TopicArn=target, Message=json.dumps(event))
        error = record.error if record is not None else None
        ctx.errors.append(f"{name} failed {1 + retries} times: {error and error.get('errorMessage')}")

    def _function_may(
        self, service: str, operation: str, function: str, parameters: dict[str, Any], rule_dlq: str | None
    ) -> bool:
        """A failure destination or dead-letter queue is written with the function's role; a rule
        target's dead-letter queue by EventBridge, under the queue's policy (not checked here)."""
        iam = self.ctx.iam
        if iam is None or rule_dlq:
            return True
        return bool(iam.function_call_allowed(function, service, operation, parameters))


def sns_event(envelope: dict[str, Any], subscription_arn: str) -> dict[str, Any]:
    """The Lambda event of an SNS delivery, from the envelope moto put on the tap queue."""
    sns = {
        "Type": envelope.get("Type", "Notification"),
        "MessageId": envelope.get("MessageId"),
        "TopicArn": envelope.get("TopicArn"),
        "Subject": envelope.get("Subject"),
        "Message": envelope.get("Message"),
        "Timestamp": envelope.get("Timestamp"),
        "SignatureVersion": envelope.get("SignatureVersion", "1"),
        "Signature": envelope.get("Signature", "local"),
        "SigningCertUrl": envelope.get("SigningCertURL", ""),
        "UnsubscribeUrl": envelope.get("UnsubscribeURL", ""),
        "MessageAttributes": envelope.get("MessageAttributes") or {},
    }
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": sns,
            }
        ]
    }


def target_input(target: Target, event: Any) -> Any:
    """What a target receives: its Input, the InputPath of the event, its InputTransformer, or the event."""
    if target.input is not None:
        return json.loads(target.input) if isinstance(target.input, str) else target.input
    if target.input_path:
        return _json_path(event, target.input_path)
    if target.input_transformer:
        paths = target.input_transformer.get("InputPathsMap") or {}
        text = str(target.input_transformer.get("InputTemplate", ""))
        for name, path in paths.items():
            value = _json_path(event, str(path))
            text = text.replace(f'"<{name}>"', json.dumps(value)).replace(
                f"<{name}>", value if isinstance(value, str) else json.dumps(value)
            )
        try:
            return json.loads(text)
        except ValueError:
            return text
    return event


def _json_path(document: Any, path: str) -> Any:
    value = document
    for part in [p for p in path.lstrip("$").split(".") if p]:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def describe_publication(published: Published) -> str:
    body = published.json()
    if isinstance(body, dict) and "type" in body and "project" in body:
        detail = body.get("detail") or {}
        shown = [
            (k, v)
            for k, v in detail.items()
            if not isinstance(v, (dict, list)) and v is not None and not str(v).startswith("arn:")
        ]
        extra = ", ".join(f"{k}={v}" for k, v in shown[:4])
        return f"{body['project']}: {body['type']}" + (f" ({extra})" if extra else "")
    attributes = ", ".join(f"{k}={v}" for k, v in published.attributes.items())
    return f"message on {short_name(published.topic_logical_id)}" + (f" [{attributes}]" if attributes else "")
