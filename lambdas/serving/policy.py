"""The model controller's decision: pure functions of the observed state and the clock.

No AWS here. The controller handler gathers the inputs (SERVING item, queue backlog, model
status, serving windows) and acts on the returned Decision; the cost benchmark calls the same
`decide` in simulated time.

Desired state: RUNNING if any of
  * a manual override says so (a "stop" override wins over everything else while it lasts);
  * work waits: detection deferred an image for this project after the last detection, the
    deferral is recent (deferred messages come back and refresh it) and the queue is not empty;
  * the last detection was less than the idle threshold ago (idle.choose_threshold: learned from
    the project's idle gaps, at most `idle_minutes`, and `idle_minutes` while the history is short);
  * the clock is inside a serving window;
  * the model became RUNNING less than the idle threshold ago: the idle clock of a model that was
    just started starts at RUNNING, not at the last detection before the start. A start takes
    minutes; the images deferred meanwhile come back at their own pace (a deferral delay, a
    throttling backoff) and must find the model still up, even when the detection that
    classified the first of them also deferred the rest (same time: not counted as waiting);
  * the model is RUNNING and an image was deferred within the pending window while the queue is
    not empty: a detection after the deferral may have served other images, so the deferred ones
    may still wait. Too weak to start a stopped model for (a start costs minutes; the deferred
    images come back and mark the work again), strong enough not to stop a running one (keeping
    it costs at most the pending window; stopping it costs a restart and the images' wait);
otherwise STOPPED (checked in this order; the reason names the first that holds). The controller
ticks every `controller_rate_minutes`, so an idle model is stopped at the first tick at or after
the later of last detection and RUNNING, plus the idle threshold.

Actions never overlap a transition: nothing is started or stopped while one is recorded on the
SERVING item (until it expires) or while the model reports STARTING or STOPPING. A start that
ends FAILED is retried while attempts stay within 1 + start_retry_limit; the attempt count is
reset when the model is seen RUNNING or nothing wants it any more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from lambdas.common.constants import SQS_MAX_DELAY_SECONDS
from lambdas.serving.idle import FinishedTransition, IdleHistory


class Status(StrEnum):
    """Project version status values the controller reasons about (botocore ProjectVersionStatus)."""

    TRAINING_COMPLETED = "TRAINING_COMPLETED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    COPYING_COMPLETED = "COPYING_COMPLETED"


STARTABLE = frozenset({Status.TRAINING_COMPLETED, Status.STOPPED, Status.COPYING_COMPLETED, Status.FAILED})
IN_TRANSITION = frozenset({Status.STARTING, Status.STOPPING})


class Desired(StrEnum):
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


class Action(StrEnum):
    START = "START"
    STOP = "STOP"
    NONE = "NONE"


@dataclass(frozen=True)
class Override:
    state: Desired
    until: float  # epoch seconds

    def active(self, now: float) -> bool:
        return now < self.until


@dataclass(frozen=True)
class ServingState:
    """What the SERVING item remembers between ticks (all times epoch seconds)."""

    last_detection_at: float | None = None
    deferred_at: float | None = None
    override: Override | None = None
    transition: str | None = None
    transition_expires_at: float | None = None
    start_attempts: int = 0
    idle: IdleHistory = field(default_factory=IdleHistory)
    finished: FinishedTransition | None = None  # the last transition requested, for its duration
    running_since: float | None = None  # when the model was recorded RUNNING (the state machine's time)

    def transition_active(self, now: float) -> bool:
        return self.transition is not None and (
            self.transition_expires_at is None or now < self.transition_expires_at
        )


@dataclass(frozen=True)
class Observation:
    now: float
    model_status: str | None  # None: no production version (nothing to serve)
    queue_backlog: int  # visible + in flight + delayed messages on the detection queue
    in_window: bool


@dataclass(frozen=True)
class Policy:
    idle_minutes: int
    start_retry_limit: int
    pending_ttl_seconds: float  # how long a deferral marker counts as waiting work
    idle_seconds: float | None = None  # the idle threshold in force; None: idle_minutes

    @property
    def idle_threshold_seconds(self) -> float:
        return self.idle_minutes * 60.0 if self.idle_seconds is None else self.idle_seconds


@dataclass(frozen=True)
class Decision:
    desired: Desired
    action: Action
    reason: str
    reset_attempts: bool = False
    gave_up: bool = False


def deferred_work_pending(state: ServingState, observation: Observation, policy: Policy) -> bool:
    """A recent deferral and a non-empty queue, whether or not a detection came after it."""
    if state.deferred_at is None or observation.queue_backlog <= 0:
        return False
    return observation.now - state.deferred_at <= policy.pending_ttl_seconds


def work_waiting(state: ServingState, observation: Observation, policy: Policy) -> bool:
    """Images deferred after the last detection wait: a recent deferral the model has not served."""
    detected, deferred = state.last_detection_at, state.deferred_at
    if detected is not None and deferred is not None and deferred <= detected:
        return False
    return deferred_work_pending(state, observation, policy)


def running_since(state: ServingState, observation: Observation) -> float | None:
    """When the model now seen RUNNING was recorded RUNNING; None when it is not RUNNING."""
    return state.running_since if observation.model_status == Status.RUNNING else None


def desired_state(state: ServingState, observation: Observation, policy: Policy) -> tuple[Desired, str]:
    now = observation.now
    if state.override is not None and state.override.active(now):
        return state.override.state, f"manual override until {state.override.until:.0f}"
    if work_waiting(state, observation, policy):
        return Desired.RUNNING, "images wait in the detection queue"
    idle = policy.idle_threshold_seconds
    if state.last_detection_at is not None and now - state.last_detection_at < idle:
        return Desired.RUNNING, f"last detection less than {idle:.0f} s ago (idle threshold)"
    if observation.in_window:
        return Desired.RUNNING, "inside a serving window"
    started = running_since(state, observation)
    if started is not None and 0 <= now - started < idle:  # a record ahead of `now`: clocks disagree
        return Desired.RUNNING, f"became RUNNING less than {idle:.0f} s ago (idle threshold)"
    if observation.model_status == Status.RUNNING and deferred_work_pending(state, observation, policy):
        return Desired.RUNNING, "images deferred within the pending window may still wait in the queue"
    return Desired.STOPPED, f"no work for {idle:.0f} s (idle threshold), outside serving windows"


def decide(state: ServingState, observation: Observation, policy: Policy) -> Decision:
    desired, why = desired_state(state, observation, policy)
    status = observation.model_status
    if status is None:
        return Decision(desired, Action.NONE, "no production version to serve")
    if state.transition_active(observation.now):
        return Decision(desired, Action.NONE, f"{state.transition} transition in progress; {why}")
    if status in IN_TRANSITION:
        return Decision(desired, Action.NONE, f"model is {status}; waiting before acting ({why})")

    if desired is Desired.RUNNING:
        if status == Status.RUNNING:
            return Decision(desired, Action.NONE, why, reset_attempts=state.start_attempts > 0)
        if status not in STARTABLE:
            return Decision(desired, Action.NONE, f"model is {status} and cannot be started ({why})")
        if status == Status.FAILED and state.start_attempts > policy.start_retry_limit:
            return Decision(
                desired,
                Action.NONE,
                f"start failed {state.start_attempts} times (limit 1 + {policy.start_retry_limit} retries)",
                gave_up=True,
            )
        return Decision(desired, Action.START, why)

    reset = state.start_attempts > 0
    if status == Status.RUNNING:
        return Decision(desired, Action.STOP, why, reset_attempts=reset)
    return Decision(desired, Action.NONE, f"model is {status}; {why}", reset_attempts=reset)


# Starting a Custom Labels model takes minutes (up to about 30); stopping is quicker. The state
# machine polls at most this long, and the transition lock expires a little after it.
TRANSITION_TIMEOUT_SECONDS = 3600
LOCK_MARGIN_SECONDS = 300
MAX_SQS_DELAY_SECONDS = SQS_MAX_DELAY_SECONDS


def deferral_delay_seconds(model_poll_seconds: int) -> int:
    """How long an image waits in the queue before it is tried again while the model is not RUNNING."""
    return max(1, min(MAX_SQS_DELAY_SECONDS, model_poll_seconds))


def pending_ttl_seconds(model_poll_seconds: int, controller_rate_minutes: int) -> float:
    """A deferral marker counts as waiting work for two redeliveries and two ticks."""
    return 2 * deferral_delay_seconds(model_poll_seconds) + 2 * controller_rate_minutes * 60


def max_polls(poll_seconds: int) -> int:
    return max(1, -(-TRANSITION_TIMEOUT_SECONDS // max(1, poll_seconds)))
