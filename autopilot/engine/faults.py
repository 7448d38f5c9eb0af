"""Fault injection for reliability tests.

Faults are armed for a number of occurrences and consumed as they fire:

* ``throttle(operation)``         -> the call answers ThrottlingException (HTTP 500, configurable)
* ``fail(operation)``             -> the call answers InternalServerError (HTTP 500), or ``code``
* ``fail_dataset_update()``       -> the next dataset create/update ends in *_FAILED (SERVICE_ERROR)
* ``fail_training()``             -> the next training ends in TRAINING_FAILED
* ``fail_start()``                -> the next StartProjectVersion ends in FAILED
* ``expire_adapter()``            -> the next DetectModerationLabels answers as if its adapter had
                                     expired: the base model answers, without ``ProjectVersion``

Every fault can be restricted to one project by name. The same API is reachable over HTTP:
``POST /_engine/faults`` with ``{"kind": "throttle", "operation": "DetectCustomLabels", "count": 2}``,
``GET /_engine/faults`` lists armed faults, ``DELETE /_engine/faults`` clears them.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("throttle", "error", "dataset_update_failed", "training_failed", "start_failed", "adapter_expired")

ERROR_STATUS = {
    "InternalServerError": 500,
    "ThrottlingException": 500,
    "ProvisionedThroughputExceededException": 400,
    "LimitExceededException": 400,
    "ServiceQuotaExceededException": 400,
    "AccessDeniedException": 400,
}


@dataclass
class Fault:
    kind: str
    operation: str | None = None  # for throttle / error: the operation name, None = every operation
    count: int = 1  # occurrences left; -1 = until cleared
    project: str | None = None  # only resources of this project
    code: str = "InternalServerError"  # for kind "error"
    message: str | None = None

    def matches(self, kind: str, operation: str | None, project: str | None) -> bool:
        return (
            self.kind == kind
            and (self.operation is None or self.operation == operation)
            and (self.project is None or self.project == project)
        )


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        if fault.kind not in KINDS:
            raise ValueError(f"Unknown fault kind {fault.kind!r}; use one of {', '.join(KINDS)}.")
        if fault.count == 0 or fault.count < -1:
            raise ValueError("count must be a positive number of occurrences, or -1 for 'until cleared'.")
        with self._lock:
            self._faults.append(fault)
        return fault

    def throttle(self, operation: str | None = None, count: int = 1, project: str | None = None) -> Fault:
        return self.add(Fault("throttle", operation, count, project, code="ThrottlingException"))

    def fail(
        self,
        operation: str | None = None,
        count: int = 1,
        project: str | None = None,
        code: str = "InternalServerError",
        message: str | None = None,
    ) -> Fault:
        return self.add(Fault("error", operation, count, project, code=code, message=message))

    def fail_dataset_update(
        self, count: int = 1, project: str | None = None, message: str | None = None
    ) -> Fault:
        return self.add(Fault("dataset_update_failed", None, count, project, message=message))

    def fail_training(self, count: int = 1, project: str | None = None, message: str | None = None) -> Fault:
        return self.add(Fault("training_failed", None, count, project, message=message))

    def fail_start(self, count: int = 1, project: str | None = None, message: str | None = None) -> Fault:
        return self.add(Fault("start_failed", None, count, project, message=message))

    def expire_adapter(self, count: int = 1, project: str | None = None) -> Fault:
        return self.add(Fault("adapter_expired", "DetectModerationLabels", count, project))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def take(self, kind: str, operation: str | None = None, project: str | None = None) -> Fault | None:
        """Consumes one occurrence of the first matching fault."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(kind, operation, project):
                    if fault.count > 0:
                        fault.count -= 1
                        if fault.count == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def from_json(self, body: dict[str, Any]) -> Fault:
        allowed = {"kind", "operation", "count", "project", "code", "message"}
        unknown = set(body) - allowed
        if unknown:
            raise ValueError(f"Unknown fault fields {sorted(unknown)}; allowed: {sorted(allowed)}.")
        if "kind" not in body:
            raise ValueError(f"A fault needs a kind, one of {', '.join(KINDS)}.")
        return self.add(Fault(**body))
