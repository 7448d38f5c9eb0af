"""Schedule rules and EventBridge Scheduler schedules, fired on the runtime's accelerated clock
(or on request), their targets reached through the delivery."""

from __future__ import annotations

from autopilot.local.runtime.context import StackContext
from autopilot.local.runtime.delivery import Delivery
from autopilot.local.schedules import is_due, scheduled_event
from autopilot.local.template import construct_path
from autopilot.local.wiring import Schedule


class Scheduling:
    def __init__(self, ctx: StackContext, delivery: Delivery) -> None:
        self.ctx = ctx
        self.delivery = delivery

    def fire_due(self) -> int:
        now = self.ctx.clock.now()
        fired = 0
        for schedule in self.ctx.schedules:
            if not schedule.enabled:
                continue
            if is_due(schedule, now):
                schedule.last_fired = now
                schedule.fired += 1
                fired += 1
                self.ctx.note("scheduler", f"{schedule.expression} fired {schedule.logical_id}")
                event = scheduled_event(schedule, now, self.ctx.resolver)
                for target in schedule.targets:
                    self.delivery.deliver(target, event, schedule.logical_id)
            schedule.last_checked = now
        return fired

    def matching(self, path_contains: str) -> list[Schedule]:
        resources = self.ctx.template.get("Resources", {})
        return [
            schedule
            for schedule in self.ctx.schedules
            if path_contains.lower()
            in (schedule.logical_id + construct_path(resources.get(schedule.logical_id, {}))).lower()
        ]

    def pause(self, path_contains: str) -> list[Schedule]:
        held = self.matching(path_contains)
        for schedule in held:
            schedule.enabled = False
        return held

    def resume(self, path_contains: str) -> list[Schedule]:
        resumed = self.matching(path_contains)
        for schedule in resumed:
            schedule.enabled = True
            schedule.armed_at = schedule.last_fired = schedule.last_checked = None
        return resumed

    def fire(self, path_contains: str) -> int:
        now = self.ctx.clock.now()
        count = 0
        for schedule in self.matching(path_contains):
            schedule.fired += 1
            schedule.last_fired = now
            count += 1
            self.ctx.note("scheduler", f"{schedule.expression} fired {schedule.logical_id} (on request)")
            for target in schedule.targets:
                self.delivery.deliver(
                    target, scheduled_event(schedule, now, self.ctx.resolver), schedule.logical_id
                )
        return count
