"""EventBridge Scheduler schedules: fired by the runtime on the accelerated clock with their
target's Input."""

from __future__ import annotations

from autopilot.local.runtime.context import StackContext
from autopilot.local.template import physical_name
from autopilot.local.wiring import Schedule, Target

SCHEDULE_TYPE = "AWS::Scheduler::Schedule"


def assign_ids(ctx: StackContext) -> None:
    r = ctx.resolver
    for lid, res in r.resources_of_type(SCHEDULE_TYPE).items():
        name = str((res.get("Properties") or {}).get("Name") or physical_name(lid, 64))
        r.physical_ids[lid] = name
        r.attributes[(lid, "Arn")] = f"arn:aws:scheduler:{ctx.region}:{ctx.account}:schedule/default/{name}"


def create_schedules(ctx: StackContext) -> None:
    for lid in ctx.of_type(SCHEDULE_TYPE):
        props = ctx.resolver.resolved_properties(lid)
        target = props.get("Target") or {}
        dead_letter = (target.get("DeadLetterConfig") or {}).get("Arn")
        ctx.schedules.append(
            Schedule(
                lid,
                str(props["ScheduleExpression"]),
                [
                    Target(
                        arn=str(target.get("Arn")),
                        input=target.get("Input"),
                        dead_letter_arn=dead_letter,
                        role_arn=target.get("RoleArn"),
                    )
                ],
                enabled=props.get("State", "ENABLED") == "ENABLED",
            )
        )
