"""What the parts of the local runtime share: the template and its resolver, the clients, and the
wiring the providers derive from the template (functions, queue triggers, taps, schedules)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from autopilot.local.lambda_service import LocalLambdaService
from autopilot.local.schedules import SimulatedClock
from autopilot.local.template import Resolver, physical_name, resource_enabled
from autopilot.local.wiring import EventSourceMapping, Published, Schedule, Tap, Target, TimelineEntry

_CLIENT_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"})


@dataclass
class StackContext:
    """The provisioned stack as the providers, the poller, the delivery and the executions see it."""

    template: dict[str, Any]
    lambdas: LocalLambdaService
    clock: SimulatedClock
    account: str = "123456789012"
    region: str = "us-east-1"
    on_note: Callable[[str, str], None] = field(default=lambda source, text: None)
    mappings: list[EventSourceMapping] = field(default_factory=list)
    taps: list[Tap] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    state_machines: dict[str, str] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)  # logical id -> function name
    published: list[Published] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    executions: dict[str, str] = field(default_factory=dict)  # execution ARN -> last seen status
    queue_visibility: dict[str, int] = field(default_factory=dict)  # queue ARN -> visibility (s)
    resolver: Resolver = field(init=False)
    iam: Any = None  # the StackEnforcement when IAM is enforced (see runtime/enforcement.py)

    def __post_init__(self) -> None:
        self.resolver = Resolver(
            self.template, account=self.account, region=self.region, fallback=self._fallback
        )

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, config=_CLIENT_CONFIG)  # type: ignore[call-overload]

    def note(self, source: str, text: str) -> None:
        self.on_note(source, text)

    def of_type(self, *types: str) -> dict[str, dict[str, Any]]:
        """The enabled resources (Conditions honoured) of the given types, by logical id."""
        return {
            lid: res
            for lid, res in self.resolver.resources_of_type(*types).items()
            if resource_enabled(self.resolver, lid)
        }

    def _fallback(self, logical_id: str, attribute: str | None) -> Any:
        """Names for resources the runtime does not emulate (keys, log groups, alarms ...)."""
        resource = self.template.get("Resources", {}).get(logical_id)
        if resource is None:
            return None
        name = physical_name(logical_id)
        service = str(resource.get("Type", "AWS::Local::Resource")).split("::")[1].lower()
        if attribute is None:
            return name
        if attribute == "Arn":
            if service == "iam":
                return f"arn:aws:iam::{self.account}:role/{name}"
            if service == "kms":
                return f"arn:aws:kms:{self.region}:{self.account}:key/{uuid.uuid5(uuid.NAMESPACE_DNS, name)}"
            return f"arn:aws:{service}:{self.region}:{self.account}:{name}"
        return f"{name}.{attribute}"

    # -- queues ---------------------------------------------------------------------------------
    def queue_arn(self, url: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account}:{url.rstrip('/').rsplit('/', 1)[1]}"

    def queue_url(self, arn: str) -> str:
        name = arn.rsplit(":", 1)[1]
        for lid in self.of_type("AWS::SQS::Queue"):
            if self.resolver.attributes.get((lid, "QueueName")) == name:
                return str(self.resolver.physical_ids[lid])
        return str(self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])

    def tap_queue(self, kind: str, source: str, targets: list[Target]) -> Tap:
        """A hidden queue for what moto routes but does not deliver (see `Tap`)."""
        name = f"local-tap-{kind}-{len(self.taps)}-{physical_name(source, 40)}"[:80]
        url = self.client("sqs").create_queue(QueueName=name)["QueueUrl"]
        tap = Tap(kind=kind, queue_url=url, source_logical_id=source, targets=targets)
        self.taps.append(tap)
        return tap


def short_name(logical_id: str) -> str:
    """A logical id without CDK's hash suffix, for the timeline."""
    return re.sub(r"[0-9A-F]{8}$", "", logical_id)


def short_function(name: str) -> str:
    parts = name.split("-")
    return short_name(parts[1]) if len(parts) >= 3 else name
