"""When ingestion asks for a dataset's flush again, and how long one flush may run (no AWS here)."""

from __future__ import annotations

from lambdas.common.constants import SQS_MAX_DELAY_SECONDS

FLUSH_REQUEST = "autopilot.ingestion.flush"  # the "type" of a flush request message
# A flush stops early enough to release its lease and report: a fifth of the remaining time, at
# most a minute.
MAX_FLUSH_MARGIN_SECONDS = 60.0


def flush_deadline(now: float, remaining_seconds: float) -> float:
    """The monotonic time by which a flush started `now` hands back, given the invocation's time left."""
    return now + remaining_seconds - min(MAX_FLUSH_MARGIN_SECONDS, remaining_seconds * 0.2)


def flush_retry_delay(retry_after: int | None, flush_delay_seconds: int) -> int:
    """The delay of a deferred flush: the flusher's backoff after a service error, else the flush delay."""
    return retry_after if retry_after is not None else flush_delay_seconds


def request_delay(delay: int) -> int:
    """A flush request's DelaySeconds, within what SQS accepts."""
    return max(0, min(SQS_MAX_DELAY_SECONDS, delay))


def flush_request(project: str, dataset_type: str) -> dict[str, str]:
    """The body of a flush request for one dataset."""
    return {"type": FLUSH_REQUEST, "project": project, "dataset_type": dataset_type}


def is_flush_request(body: dict[str, object]) -> bool:
    return body.get("type") == FLUSH_REQUEST
