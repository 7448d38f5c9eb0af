"""EventBridge buses and rules. A rule with an event pattern gets a tap queue as its target in moto
(moto does not deliver to Lambda or Step Functions); the runtime delivers what it matched to the
rule's real targets. A schedule rule becomes a `Schedule` on the accelerated clock."""

from __future__ import annotations

import json
from typing import Any

from autopilot.local.runtime.context import StackContext
from autopilot.local.template import physical_name
from autopilot.local.wiring import Schedule, Target

BUS_TYPE = "AWS::Events::EventBus"
RULE_TYPE = "AWS::Events::Rule"


def assign_ids(ctx: StackContext) -> None:
    r = ctx.resolver
    for lid, res in r.resources_of_type(BUS_TYPE).items():
        name = str((res.get("Properties") or {}).get("Name") or physical_name(lid, 64))
        r.physical_ids[lid] = name
        r.attributes[(lid, "Name")] = name
        r.attributes[(lid, "Arn")] = f"arn:aws:events:{ctx.region}:{ctx.account}:event-bus/{name}"
    for lid, res in r.resources_of_type(RULE_TYPE).items():
        name = str((res.get("Properties") or {}).get("Name") or physical_name(lid, 64))
        r.physical_ids[lid] = name
        r.attributes[(lid, "Arn")] = f"arn:aws:events:{ctx.region}:{ctx.account}:rule/{name}"


def targets(raw_targets: list[dict[str, Any]]) -> list[Target]:
    return [
        Target(
            arn=str(raw["Arn"]),
            input=raw.get("Input"),
            input_path=raw.get("InputPath"),
            input_transformer=raw.get("InputTransformer"),
            dead_letter_arn=(raw.get("DeadLetterConfig") or {}).get("Arn"),
            role_arn=raw.get("RoleArn"),
        )
        for raw in raw_targets
    ]


def create_buses_and_rules(ctx: StackContext) -> None:
    events = ctx.client("events")
    for lid in ctx.of_type(BUS_TYPE):
        events.create_event_bus(Name=ctx.resolver.physical_ids[lid])
    for lid in ctx.of_type(RULE_TYPE):
        props = ctx.resolver.resolved_properties(lid)
        rule_targets = targets(props.get("Targets") or [])
        enabled = props.get("State", "ENABLED") == "ENABLED"
        if props.get("ScheduleExpression"):
            ctx.schedules.append(Schedule(lid, str(props["ScheduleExpression"]), rule_targets, enabled))
            continue
        if not props.get("EventPattern"):
            continue
        bus_name = str(props.get("EventBusName") or "default").rsplit("/", 1)[-1]
        name = ctx.resolver.physical_ids[lid]
        events.put_rule(
            Name=name,
            EventPattern=json.dumps(props["EventPattern"]),
            EventBusName=bus_name,
            State="ENABLED" if enabled else "DISABLED",
        )
        tap = ctx.tap_queue("rule", lid, rule_targets)
        events.put_targets(
            Rule=name,
            EventBusName=bus_name,
            Targets=[{"Id": "local-tap", "Arn": ctx.queue_arn(tap.queue_url)}],
        )
