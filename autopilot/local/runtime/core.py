"""`LocalRuntime`: the provisioned stack (`providers`), the pump that polls its queues
(`polling`), delivers to targets (`delivery`), fires schedules (`scheduling`) and emits Step
Functions events (`executions`), and the lookups the demo, the CLI and the tests use."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from autopilot.local.lambda_service import Invocation, LocalLambdaService
from autopilot.local.runtime import providers
from autopilot.local.runtime.context import StackContext, short_function
from autopilot.local.runtime.delivery import Delivery
from autopilot.local.runtime.enforcement import StackEnforcement
from autopilot.local.runtime.executions import ExecutionEvents
from autopilot.local.runtime.polling import SqsPoller
from autopilot.local.runtime.providers import sqs
from autopilot.local.runtime.scheduling import Scheduling
from autopilot.local.runtime.ttl import TtlSweeper
from autopilot.local.schedules import SimulatedClock
from autopilot.local.template import construct_path
from autopilot.local.wiring import Schedule, TimelineEntry

logger = logging.getLogger(__name__)


class LocalRuntime:
    """Provision with `provision()` (inside an active moto), then `start()` the pump or call `pump()`."""

    def __init__(
        self,
        template: dict[str, Any],
        lambda_service: LocalLambdaService,
        *,
        clock: SimulatedClock | None = None,
        account: str = "123456789012",
        region: str = "us-east-1",
        pump_interval_s: float = 0.2,
        on_timeline: Callable[[TimelineEntry], None] | None = None,
        iam: bool = True,
    ) -> None:
        """`iam`: check every call and delivery against the template's policies (see
        runtime/enforcement.py); off only for debugging (`--no-iam`)."""
        self.iam_enabled = iam
        self.ctx = StackContext(
            template, lambda_service, clock or SimulatedClock(), account, region, on_note=self.note
        )
        self.template = template
        self.lambdas = lambda_service
        self.clock = self.ctx.clock
        self.account = account
        self.region = region
        self.pump_interval_s = pump_interval_s
        self.on_timeline = on_timeline
        self.resolver = self.ctx.resolver
        # The wiring and what was observed, shared with the parts (same objects).
        self.mappings = self.ctx.mappings
        self.taps = self.ctx.taps
        self.schedules = self.ctx.schedules
        self.state_machines = self.ctx.state_machines
        self.functions = self.ctx.functions
        self.published = self.ctx.published
        self.timeline = self.ctx.timeline
        self.errors = self.ctx.errors
        self.executions = self.ctx.executions
        self.poller = SqsPoller(self.ctx)
        self.delivery = Delivery(self.ctx)
        self.scheduling = Scheduling(self.ctx, self.delivery)
        self.execution_events = ExecutionEvents(self.ctx)
        self.ttl = TtlSweeper(self.ctx)  # DynamoDB TTL on the clock (lag: self.ttl.lag_s)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pump_lock = threading.Lock()
        self.lambdas.listeners.append(self._on_invocation)
        self.lambdas.pace = self.clock.real_pace  # handler compute at real pace on the clock
        self.lambda_url: str | None = None
        self.moto_url: str | None = None

    def client(self, service: str) -> Any:
        return self.ctx.client(service)

    # -- provisioning ---------------------------------------------------------------------------
    def provision(self) -> None:
        """Creates every supported resource in the active moto backend and registers the functions."""
        providers.provision(self.ctx)
        if self.iam_enabled:
            self.ctx.iam = StackEnforcement(self.ctx)
            self.ctx.iam.activate()
        self.note("runtime", self.describe_wiring())

    @property
    def iam(self) -> StackEnforcement | None:
        """The IAM enforcement of this stack (None with `iam=False`)."""
        enforcement: StackEnforcement | None = self.ctx.iam
        return enforcement

    def iam_summary(self) -> dict[str, Any]:
        """Distinct (principal, action, resource) triples checked and denied, and what was not judged."""
        if self.iam is None:
            return {"enforced": False}
        return {"enforced": True, **self.iam.summary()}

    def release(self) -> None:
        """Stops the pump and removes the IAM checks from the process (the stack is done)."""
        self.stop()
        if self.iam is not None:
            self.iam.deactivate()

    def describe_wiring(self) -> str:
        return (
            f"provisioned {len(self.functions)} functions, {len(self.mappings)} queue triggers, "
            f"{len(self.state_machines)} state machines, {len(self.schedules)} schedules, "
            f"{sum(1 for t in self.taps if t.kind == 'rule')} event rules"
        )

    # -- lookups for the demo, the CLI and the tests ---------------------------------------------
    def outputs(self) -> dict[str, str]:
        """The template's Outputs, resolved against the provisioned resources (as DescribeStacks)."""
        resolved: dict[str, str] = {}
        for key, output in (self.template.get("Outputs") or {}).items():
            if "Condition" in output and not self.resolver.condition(output["Condition"]):
                continue
            resolved[key] = str(self.resolver.resolve(output["Value"]))
        return resolved

    def output(self, key: str) -> str:
        """One output's value; KeyError naming the output when the template does not declare it."""
        values = self.outputs()
        if key not in values:
            raise KeyError(f"the stack declares no output {key!r} (outputs: {', '.join(sorted(values))})")
        return values[key]

    def find(self, resource_type: str, path_contains: str = "") -> list[str]:
        """Logical ids of `resource_type` whose construct path contains `path_contains` (for the
        functions, schedules and test stacks that have no output)."""
        wanted = path_contains.lower()
        return [
            lid
            for lid, res in self.ctx.of_type(resource_type).items()
            if wanted in construct_path(res).lower()
        ]

    def physical(self, logical_id: str) -> str:
        return str(self.resolver.physical_ids[logical_id])

    def function_names(self, path_contains: str = "") -> list[str]:
        return [
            self.functions[lid]
            for lid in self.find("AWS::Lambda::Function", path_contains)
            if lid in self.functions
        ]

    def dead_letter_depths(self) -> dict[str, int]:
        """Messages waiting in every queue that some redrive policy points at."""
        return sqs.dead_letter_depths(self.ctx)

    # -- schedules ------------------------------------------------------------------------------
    def pause_schedules(self, path_contains: str) -> list[Schedule]:
        """Holds the schedules whose logical id or construct path contains `path_contains`."""
        return self.scheduling.pause(path_contains)

    def resume_schedules(self, path_contains: str) -> list[Schedule]:
        return self.scheduling.resume(path_contains)

    def fire(self, path_contains: str) -> int:
        """Fires every schedule whose logical id or construct path contains `path_contains` now."""
        return self.scheduling.fire(path_contains)

    # -- the pump -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="local-runtime-pump", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.pump()
            except Exception as error:  # the pump must survive any one bad delivery; it is recorded
                logger.exception("local runtime pump failed")
                self.errors.append(f"pump: {type(error).__name__}: {error}")
                worked = 0
            if not worked:
                self._stop.wait(self.pump_interval_s)

    def pump(self) -> int:
        """One round: queue triggers, taps, due schedules, execution status. Returns the work done."""
        with self._pump_lock:
            done = 0
            for mapping in self.mappings:
                if mapping.enabled:
                    done += self.poller.poll(mapping, self._invoke).handed
            for tap in list(self.taps):
                messages = self.poller.receive_and_delete(tap.queue_url)
                for message in messages:
                    self.delivery.dispatch(tap, message)
                done += len(messages)
            done += self.scheduling.fire_due()
            self.execution_events.watch()
            self.ttl.sweep()
            return done

    def run_until(self, predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.2) -> bool:
        """Pumps (or waits for the background pump) until `predicate()` or the timeout; bounded."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            if self._thread is None:
                if not self.pump():
                    time.sleep(poll_s)
            else:
                time.sleep(poll_s)
        return predicate()

    def _invoke(self, function_name: str, event: Any) -> Invocation:
        return self.lambdas.invoke(function_name, event)

    # -- the timeline ---------------------------------------------------------------------------
    def _on_invocation(self, record: Any) -> None:
        outcome = "failed: " + str(record.error.get("errorMessage"))[:120] if record.error else "ok"
        self.note("lambda", f"{short_function(record.function_name)} {outcome} ({record.duration_s:.2f} s)")

    def note(self, source: str, text: str) -> None:
        entry = TimelineEntry(self.clock.elapsed_real(), source, text)
        self.timeline.append(entry)
        if self.on_timeline is not None:
            self.on_timeline(entry)
