"""One vehicle in one campaign: its state machine, how vehicle reports move it, and the retry policy."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from fleetota_core.domain.bounds import MAX_BACKOFF_FACTOR, MAX_BACKOFF_S
from fleetota_core.domain.telemetry import OtaReport, OtaStatus

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


class DeploymentState(StrEnum):
    PENDING = "PENDING"
    ELIGIBLE = "ELIGIBLE"
    DEFERRED = "DEFERRED"
    NOTIFIED = "NOTIFIED"
    DOWNLOADING = "DOWNLOADING"
    VERIFYING = "VERIFYING"
    # Two-phase delivery (install policy ``window`` or ``consent``): the image is staged on the vehicle.
    DOWNLOADED = "DOWNLOADED"
    AWAITING_CONSENT = "AWAITING_CONSENT"
    AWAITING_INSTALL = "AWAITING_INSTALL"
    INSTALLING = "INSTALLING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    RETRY_SCHEDULED = "RETRY_SCHEDULED"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"
    ROLLED_BACK = "ROLLED_BACK"


S = DeploymentState
_IN_FLIGHT_TARGETS = {
    S.DOWNLOADING,
    S.VERIFYING,
    S.DOWNLOADED,
    S.INSTALLING,
    S.SUCCEEDED,
    S.FAILED,
    S.REJECTED,
    S.TIMED_OUT,
}
# A staged image waits for its install; the vehicle may report the install's steps, or fail.
_STAGED_TARGETS = {S.INSTALLING, S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.ROLLED_BACK}
# Forward jumps along the main path are allowed: telemetry batches can lose or reorder a step.
TRANSITIONS: dict[DeploymentState, frozenset[DeploymentState]] = {
    S.PENDING: frozenset({S.ELIGIBLE, S.DEFERRED, S.CANCELLED}),
    S.DEFERRED: frozenset({S.ELIGIBLE, S.DEFERRED, S.CANCELLED}),
    S.ELIGIBLE: frozenset({S.NOTIFIED, S.DEFERRED, S.CANCELLED}),
    S.NOTIFIED: frozenset(_IN_FLIGHT_TARGETS),
    S.DOWNLOADING: frozenset(_IN_FLIGHT_TARGETS),
    S.VERIFYING: frozenset(_IN_FLIGHT_TARGETS - {S.DOWNLOADING}),
    S.DOWNLOADED: frozenset(_STAGED_TARGETS | {S.AWAITING_CONSENT, S.AWAITING_INSTALL}),
    S.AWAITING_CONSENT: frozenset(_STAGED_TARGETS | {S.AWAITING_INSTALL}),
    S.AWAITING_INSTALL: frozenset(_STAGED_TARGETS),
    S.INSTALLING: frozenset({S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.ROLLED_BACK}),
    S.FAILED: frozenset({S.RETRY_SCHEDULED, S.PENDING}),
    S.TIMED_OUT: frozenset({S.RETRY_SCHEDULED, S.PENDING}),
    S.RETRY_SCHEDULED: frozenset({S.ELIGIBLE, S.DEFERRED, S.CANCELLED}),
    S.SUCCEEDED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.ROLLED_BACK: frozenset(),
}
IN_FLIGHT = frozenset({S.NOTIFIED, S.DOWNLOADING, S.VERIFYING, S.INSTALLING})
WAITING = frozenset({S.PENDING, S.ELIGIBLE, S.DEFERRED, S.RETRY_SCHEDULED})
# Downloaded and verified, waiting to install: no in-flight slot held, looked after in the active lane.
STAGED = frozenset({S.DOWNLOADED, S.AWAITING_CONSENT, S.AWAITING_INSTALL})
# Terminal failures count against thresholds; FAILED/TIMED_OUT become RETRY_SCHEDULED when retried.
FAILED_OUTCOMES = frozenset({S.FAILED, S.TIMED_OUT, S.REJECTED, S.ROLLED_BACK})
FINISHED = frozenset({S.SUCCEEDED, S.CANCELLED}) | FAILED_OUTCOMES

_REPORT_STATE = {
    OtaStatus.DOWNLOADING: S.DOWNLOADING,
    OtaStatus.VERIFYING: S.VERIFYING,
    OtaStatus.DOWNLOADED: S.DOWNLOADED,
    OtaStatus.INSTALLING: S.INSTALLING,
    OtaStatus.SUCCEEDED: S.SUCCEEDED,
    OtaStatus.FAILED: S.FAILED,
    OtaStatus.REJECTED: S.REJECTED,
    OtaStatus.ROLLED_BACK: S.ROLLED_BACK,
}

# AWS IoT Jobs retries per failure type; these are the failures another attempt can fix.
TRANSIENT_ERROR_CODES = frozenset(
    {"DOWNLOAD_INTERRUPTED", "NETWORK_LOST", "INSTALL_TRANSIENT", "BATTERY_TOO_LOW", "TIMED_OUT", "BUSY"}
)


class IllegalTransition(Exception):
    def __init__(self, current: DeploymentState, target: DeploymentState) -> None:
        super().__init__(f"deployment cannot go from {current} to {target}")
        self.current = current
        self.target = target


def can_transition(current: DeploymentState, target: DeploymentState) -> bool:
    return target in TRANSITIONS[current]


def check_transition(current: DeploymentState, target: DeploymentState) -> DeploymentState:
    if not can_transition(current, target):
        raise IllegalTransition(current, target)
    return target


def state_for_report(report: OtaReport) -> DeploymentState | None:
    """The state a report asks for; None for acknowledgements that change nothing (RECEIVED)."""
    return _REPORT_STATE.get(report.status)


def apply_report(current: DeploymentState, report: OtaReport) -> DeploymentState | IllegalTransition | None:
    """The new state for ``report``, an :class:`IllegalTransition` to count, or None for no change.

    A repeated DOWNLOADING report (progress), or a DOWNLOADED report of an image already staged, is a
    no-op state-wise.
    """
    target = state_for_report(report)
    if target is None or (target is current and current is S.DOWNLOADING):
        return None
    if target is S.DOWNLOADED and current in STAGED:
        return None  # a repeat: the tick already moved the staged image on
    if not can_transition(current, target):
        return IllegalTransition(current, target)
    return target


class RetryPolicy(BaseModel):
    """Exponential backoff: attempt n waits base * factor**(n-1), capped."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff_base_s: float = Field(default=60, ge=0, le=MAX_BACKOFF_S)
    backoff_factor: float = Field(default=2.0, ge=1, le=MAX_BACKOFF_FACTOR)
    backoff_max_s: float = Field(default=3600, ge=0, le=MAX_BACKOFF_S)
    transient_error_codes: tuple[str, ...] = tuple(sorted(TRANSIENT_ERROR_CODES))

    def backoff(self, attempt: int) -> timedelta:
        seconds = min(self.backoff_base_s * self.backoff_factor ** max(attempt - 1, 0), self.backoff_max_s)
        return timedelta(seconds=seconds)

    def is_transient(self, error_code: str | None) -> bool:
        return error_code is not None and error_code in self.transient_error_codes


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    at: datetime | None = None


def decide_retry(
    policy: RetryPolicy, state: DeploymentState, error_code: str | None, attempt: int, now: datetime
) -> RetryDecision:
    """Whether a FAILED or TIMED_OUT attempt gets another try, and when. Permanent errors never do."""
    if state not in (S.FAILED, S.TIMED_OUT) or attempt >= policy.max_attempts:
        return RetryDecision(False)
    if state is S.FAILED and not policy.is_transient(error_code):
        return RetryDecision(False)
    return RetryDecision(True, now + policy.backoff(attempt))


def deployment_id(campaign_id: str, vin: str) -> str:
    return f"{campaign_id}.{vin}"


@dataclass(frozen=True)
class Deployment:
    """One vehicle in one campaign, as stored; ``version`` is its optimistic-lock counter."""

    campaign_id: str
    vin: str
    wave: int
    state: DeploymentState
    version: int = 0
    attempt: int = 0
    next_action_at: datetime | None = None
    notified_at: datetime | None = None
    model: str | None = None
    hw_rev: str | None = None
    from_version: str | None = None
    reason: str | None = None
    error_code: str | None = None
    detail: str | None = None
    progress_pct: float | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deferred_at: datetime | None = None
    finished_at: datetime | None = None
    # A notice sent before sent hints existed; it vouches that the vehicle has its job.
    notice_sent: bool = False
    # When the vehicle joined a continuous campaign after its creation (None: targeted at creation).
    joined_at: datetime | None = None
    # Two-phase delivery: when the image was staged, and when the install phase began (an install
    # permit sent, or the driver's consent reported); the in-flight timeout counts from the latter.
    staged_at: datetime | None = None
    install_at: datetime | None = None
    # The network policy: whether this attempt's job may download over cellular, and the bytes the
    # vehicle reported downloading over each network (all attempts).
    cellular_granted: bool = False
    bytes_wifi: int | None = None
    bytes_cellular: int | None = None

    @property
    def deployment_id(self) -> str:
        return deployment_id(self.campaign_id, self.vin)

    def changed(self, **changes: object) -> Deployment:
        return replace(self, **changes)  # type: ignore[arg-type]


# The fields a transition or a touch may set or clear (everything but the key and the lock).
MUTABLE_FIELDS = frozenset(Deployment.__dataclass_fields__) - {
    "campaign_id",
    "vin",
    "wave",
    "state",
    "version",
}


class Lane(StrEnum):
    """Where the tick files a "look at this deployment then" hint: in flight, or waiting."""

    ACTIVE = "active"  # notice leases and in-flight deadlines
    WAIT = "wait"  # deferral re-checks and retries


def lane_of(state: DeploymentState) -> Lane | None:
    """The hint lane of a deployment in ``state``; None once it needs no more looking at."""
    if state in IN_FLIGHT or state in STAGED:
        return Lane.ACTIVE
    if state in WAITING:
        return Lane.WAIT
    return None


class Outcome(Enum):
    APPLIED = "applied"
    LOST_RACE = "lost_race"  # someone else changed the deployment first
    AT_CAPACITY = "at_capacity"  # the campaign already has max_in_flight deployments in flight


@dataclass(frozen=True)
class Transition:
    """One conditional state change: from ``old_state`` at ``old_version`` to ``new_state``.

    ``sets`` and ``clears`` name :class:`Deployment` fields. ``next_action_at`` is when the tick
    should look at the deployment again (lease, deadline, re-check, retry).
    """

    campaign_id: str
    vin: str
    wave: int
    old_state: DeploymentState
    old_version: int
    new_state: DeploymentState
    next_action_at: datetime | None = None
    sets: dict[str, object] = field(default_factory=dict)
    clears: tuple[str, ...] = ()
    max_in_flight: int | None = None  # enforce the cap when this transition enters flight
    hinted: bool = False  # the caller already wrote the schedule hint (in a batch)

    def __post_init__(self) -> None:
        unknown = (set(self.sets) | set(self.clears)) - MUTABLE_FIELDS
        if unknown:
            raise ValueError(f"a transition cannot set {', '.join(sorted(unknown))}")

    @classmethod
    def of(
        cls,
        deployment: Deployment,
        new_state: DeploymentState,
        *,
        next_action_at: datetime | None = None,
        sets: Mapping[str, object] | None = None,
        clears: tuple[str, ...] = (),
        max_in_flight: int | None = None,
        hinted: bool = False,
    ) -> Transition:
        """The transition of ``deployment`` as it was read (its state and version) to ``new_state``."""
        return cls(
            deployment.campaign_id,
            deployment.vin,
            deployment.wave,
            deployment.state,
            deployment.version,
            new_state,
            next_action_at,
            dict(sets or {}),
            clears,
            max_in_flight,
            hinted,
        )


class CounterKey(NamedTuple):
    """One of a campaign's counters: a state count, the in-flight count, or a wave's tally."""

    # "state", "in_flight", "wave_ok", "wave_fail", "wave_wait", "wave_joined", "delivery" (a delta
    # counter, with ``name``), or a byte counter (BYTE_COUNTERS)
    kind: str
    state: DeploymentState | None = None
    wave: int | None = None
    name: str | None = None  # a delivery counter (``fleetota_core.domain.delta.delivery_counts``)


IN_FLIGHT_COUNT = CounterKey("in_flight")
BYTES_WIFI = CounterKey("bytes_wifi")
BYTES_CELLULAR = CounterKey("bytes_cellular")
CELLULAR_RESERVED = CounterKey("cellular_reserved")
BYTE_COUNTERS = (BYTES_WIFI, BYTES_CELLULAR, CELLULAR_RESERVED)


def state_count(state: DeploymentState) -> CounterKey:
    return CounterKey("state", state=state)


def delivery_count(name: str) -> CounterKey:
    return CounterKey("delivery", name=name)


def wave_tallies(wave: int) -> tuple[CounterKey, CounterKey, CounterKey]:
    """The wave's succeeded, failed and waiting counters."""
    return (
        CounterKey("wave_ok", wave=wave),
        CounterKey("wave_fail", wave=wave),
        CounterKey("wave_wait", wave=wave),
    )


def wave_joined(wave: int) -> CounterKey:
    """How many deployments joined ``wave`` after the campaign was created (continuous campaigns)."""
    return CounterKey("wave_joined", wave=wave)


def enrolment_deltas(wave: int) -> dict[CounterKey, int]:
    """What one vehicle joining ``wave`` as a PENDING deployment adds to the campaign's counters."""
    return {state_count(S.PENDING): 1, wave_tallies(wave)[2]: 1, wave_joined(wave): 1}


def counter_deltas(old: DeploymentState, new: DeploymentState, wave: int) -> dict[CounterKey, int]:
    """What one transition adds to the campaign's counters (see ``CampaignCounters``)."""
    ok, fail, wait = wave_tallies(wave)
    deltas = {
        state_count(old): -1,
        state_count(new): 1,
        IN_FLIGHT_COUNT: (new in IN_FLIGHT) - (old in IN_FLIGHT),
        ok: (new is S.SUCCEEDED) - (old is S.SUCCEEDED),
        fail: (new in FAILED_OUTCOMES) - (old in FAILED_OUTCOMES),
        wait: (new in WAITING) - (old in WAITING),
    }
    if old is new:
        del deltas[state_count(old)]
    return {k: v for k, v in deltas.items() if v}


def recount(
    deployments: list[tuple[DeploymentState, int]], waves: int, joined: Iterable[int] = ()
) -> dict[CounterKey, int]:
    """Every counter of a campaign from its deployments' (state, wave); repairs drift after a crash.

    ``joined`` are the waves of the deployments that joined after creation, one entry each.
    """
    counts: dict[CounterKey, int] = {state_count(s): 0 for s in S}
    counts[IN_FLIGHT_COUNT] = 0
    for wave in range(waves):
        counts.update(dict.fromkeys(wave_tallies(wave), 0))
        counts[wave_joined(wave)] = 0
    for wave in joined:
        counts[wave_joined(wave)] += 1
    for state, wave in deployments:
        ok, fail, wait = wave_tallies(wave)
        counts[state_count(state)] += 1
        counts[IN_FLIGHT_COUNT] += state in IN_FLIGHT
        counts[ok] += state is S.SUCCEEDED
        counts[fail] += state in FAILED_OUTCOMES
        counts[wait] += state in WAITING
    return counts
