"""One vehicle in one campaign: its state machine, how vehicle reports move it, and the retry policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from fleetota_core.domain.telemetry import OtaReport, OtaStatus


class DeploymentState(StrEnum):
    PENDING = "PENDING"
    ELIGIBLE = "ELIGIBLE"
    DEFERRED = "DEFERRED"
    NOTIFIED = "NOTIFIED"
    DOWNLOADING = "DOWNLOADING"
    VERIFYING = "VERIFYING"
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
    S.INSTALLING,
    S.SUCCEEDED,
    S.FAILED,
    S.REJECTED,
    S.TIMED_OUT,
}
# Forward jumps along the main path are allowed: telemetry batches can lose or reorder a step.
TRANSITIONS: dict[DeploymentState, frozenset[DeploymentState]] = {
    S.PENDING: frozenset({S.ELIGIBLE, S.DEFERRED, S.CANCELLED}),
    S.DEFERRED: frozenset({S.ELIGIBLE, S.DEFERRED, S.CANCELLED}),
    S.ELIGIBLE: frozenset({S.NOTIFIED, S.DEFERRED, S.CANCELLED}),
    S.NOTIFIED: frozenset(_IN_FLIGHT_TARGETS),
    S.DOWNLOADING: frozenset(_IN_FLIGHT_TARGETS),
    S.VERIFYING: frozenset(_IN_FLIGHT_TARGETS - {S.DOWNLOADING}),
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
# Terminal failures count against thresholds; FAILED/TIMED_OUT become RETRY_SCHEDULED when retried.
FAILED_OUTCOMES = frozenset({S.FAILED, S.TIMED_OUT, S.REJECTED, S.ROLLED_BACK})
FINISHED = frozenset({S.SUCCEEDED, S.CANCELLED}) | FAILED_OUTCOMES

_REPORT_STATE = {
    OtaStatus.DOWNLOADING: S.DOWNLOADING,
    OtaStatus.VERIFYING: S.VERIFYING,
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

    A repeated DOWNLOADING report (progress) is a no-op state-wise.
    """
    target = state_for_report(report)
    if target is None or (target is current and current is S.DOWNLOADING):
        return None
    if not can_transition(current, target):
        return IllegalTransition(current, target)
    return target


class RetryPolicy(BaseModel):
    """Exponential backoff: attempt n waits base * factor**(n-1), capped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff_base_s: float = Field(default=60, ge=0)
    backoff_factor: float = Field(default=2.0, ge=1)
    backoff_max_s: float = Field(default=3600, ge=0)
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
