"""Campaigns: the spec an operator writes, the state machine, and the pure wave-advance rule.

Semantics follow Eclipse hawkBit (per-wave success and error thresholds, error checked first; pause
stops new notifications, not those in flight) and AWS IoT Jobs (abort on a failure percentage once a
minimum number of deployments has executed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime  # noqa: TC003 - pydantic needs it at runtime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from fleetota_core.domain.bounds import (
    MAX_DEFER_RECHECK_S,
    MAX_DESCRIPTION_CHARS,
    MAX_IN_PROGRESS_TIMEOUT_S,
    MAX_JOB_TTL_S,
    MAX_NAME_CHARS,
    MAX_SAFE_INT,
    MAX_SOAK_MINUTES,
    MIN_SOAK_MINUTES,
)
from fleetota_core.domain.delivery import DeliveryPolicy
from fleetota_core.domain.deployment import RetryPolicy
from fleetota_core.domain.eligibility import EligibilityRules
from fleetota_core.domain.firmware import FirmwareRelease  # noqa: TC001 - pydantic needs it at runtime
from fleetota_core.domain.health_gate import GateStatus  # noqa: TC001 - pydantic needs it at runtime
from fleetota_core.domain.telemetry import SEMVER_PATTERN


class CampaignState(StrEnum):
    DRAFT = "DRAFT"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"  # four-eyes: waits for a second operator (domain/approval.py)
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    ABORTED = "ABORTED"
    CANCELLED = "CANCELLED"


C = CampaignState
TRANSITIONS: dict[CampaignState, frozenset[CampaignState]] = {
    C.DRAFT: frozenset({C.SCHEDULED, C.CANCELLED}),
    C.AWAITING_APPROVAL: frozenset({C.SCHEDULED, C.CANCELLED}),
    # The tick holds back a scheduled campaign that needs approval and has none.
    C.SCHEDULED: frozenset({C.RUNNING, C.CANCELLED, C.AWAITING_APPROVAL}),
    C.RUNNING: frozenset({C.PAUSED, C.COMPLETED, C.ABORTED}),
    C.PAUSED: frozenset({C.RUNNING, C.ABORTED}),
    # retry-failed reopens a finished campaign for its failed deployments.
    C.COMPLETED: frozenset({C.RUNNING}),
    C.ABORTED: frozenset(),
    C.CANCELLED: frozenset(),
}
ACTIVE_STATES = frozenset({C.SCHEDULED, C.RUNNING, C.PAUSED})
SYSTEM_OPERATOR = "system:update-manager"  # who the audit trail names for the tick's own decisions


def can_transition(current: CampaignState, target: CampaignState) -> bool:
    return target in TRANSITIONS[current]


class TargetFilter(BaseModel):
    """Which vehicles a campaign is for; every non-empty field must match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: tuple[str, ...] = ()
    hw_revs: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    current_versions: tuple[str, ...] = ()
    vins: tuple[str, ...] = ()

    def matches(self, vin: str, model: str, hw_rev: str, region: str, version: str) -> bool:
        checks = (
            (self.vins, vin),
            (self.models, model),
            (self.hw_revs, hw_rev),
            (self.regions, region),
            (self.current_versions, version),
        )
        return all(not allowed or value in allowed for allowed, value in checks)


class WaveSpec(BaseModel):
    """One rollout group: a share of the fleet (``percent``) or a fixed ``size``, with its thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    percent: float | None = Field(default=None, gt=0, le=100)
    size: int | None = Field(default=None, gt=0, le=MAX_SAFE_INT)
    success_threshold_pct: float = Field(default=90, ge=0, le=100)
    error_threshold_pct: float = Field(default=10, ge=0, le=100)

    @model_validator(mode="after")
    def _one_size(self) -> WaveSpec:
        if (self.percent is None) == (self.size is None):
            raise ValueError("a wave needs exactly one of percent or size")
        return self


class AbortCriteria(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    failure_pct: float = Field(default=25, gt=0, le=100)
    min_executed: int = Field(default=10, ge=1, le=MAX_SAFE_INT)


class CampaignSpec(BaseModel):
    """Everything an operator decides about a campaign (JSON/YAML spec file or CLI flags).

    Every number is bounded (``domain/bounds.py``): a spec that validates never overflows a
    datetime, a JSON number or a DynamoDB number later, in the tick.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    release_version: str = Field(pattern=SEMVER_PATTERN)
    target: TargetFilter = TargetFilter()
    waves: tuple[WaveSpec, ...] = (WaveSpec(percent=100),)
    abort: AbortCriteria = AbortCriteria()
    max_in_flight: int = Field(default=100, ge=1, le=100_000)
    in_progress_timeout_s: int = Field(default=3600, ge=10, le=MAX_IN_PROGRESS_TIMEOUT_S)
    retry: RetryPolicy = RetryPolicy()
    eligibility: EligibilityRules = EligibilityRules()
    # When a downloaded image may install, and over which networks it downloads (domain/delivery.py).
    delivery: DeliveryPolicy = DeliveryPolicy()
    defer_recheck_s: int = Field(default=300, ge=1, le=MAX_DEFER_RECHECK_S)
    job_ttl_s: int = Field(default=86400, ge=60, le=MAX_JOB_TTL_S)
    start_at: AwareDatetime | None = None
    kind: Literal["update", "rollback"] = "update"
    rollback_of: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    # A critical campaign always waits for a second operator's approval (domain/approval.py).
    critical: bool = False
    # AWS IoT Jobs' continuous jobs: vehicles that match later join the open wave (domain/enrolment.py).
    continuous: bool = False
    # The health gate: after each wave but the last, its updated vehicles (canary) are compared with
    # the campaign's not yet updated ones (control) for this long before the next wave opens
    # (services/campaigns/health_gate.py). None: waves open on install results alone.
    soak_minutes: float | None = Field(default=None, ge=MIN_SOAK_MINUTES, le=MAX_SOAK_MINUTES)

    @model_validator(mode="after")
    def _waves(self) -> CampaignSpec:
        if not self.waves:
            raise ValueError("a campaign needs at least one wave")
        if self.continuous and self.kind == "rollback":
            raise ValueError("a rollback campaign cannot be continuous (it is for the vehicles it names)")
        return self

    @property
    def allow_downgrade(self) -> bool:
        return self.kind == "rollback"


def wave_sizes(total: int, waves: tuple[WaveSpec, ...]) -> list[int]:
    """How many deployments each wave gets; the last wave takes whatever the others left."""
    sizes: list[int] = []
    left = total
    for index, wave in enumerate(waves):
        if index == len(waves) - 1:
            sizes.append(left)
            break
        want = wave.size if wave.size is not None else round(total * (wave.percent or 0) / 100)
        take = max(0, min(left, want))
        sizes.append(take)
        left -= take
    return sizes


@dataclass
class CampaignCounters:
    """Kept on the campaign item and updated with each deployment transition, so no tick scans."""

    states: dict[str, int] = field(default_factory=dict)
    wave_succeeded: list[int] = field(default_factory=list)
    wave_failed: list[int] = field(default_factory=list)
    wave_waiting: list[int] = field(default_factory=list)  # PENDING, DEFERRED, RETRY_SCHEDULED
    wave_joined: list[int] = field(default_factory=list)  # enrolled after creation (continuous campaigns)

    def joined_in(self, wave: int) -> int:
        return self.wave_joined[wave] if wave < len(self.wave_joined) else 0

    @property
    def joined(self) -> int:
        return sum(self.wave_joined)

    delivery: dict[str, int] = field(default_factory=dict)  # delta.delivery_counts names
    # Bytes the vehicles reported downloading, per network, and the cellular budget reserved so far.
    bytes_wifi: int = 0
    bytes_cellular: int = 0
    cellular_reserved: int = 0

    def waiting_in(self, wave: int) -> int:
        # Unknown (older items without the counter): assume there may be work.
        return self.wave_waiting[wave] if wave < len(self.wave_waiting) else 1

    def count(self, *states: str) -> int:
        return sum(self.states.get(str(s), 0) for s in states)

    @property
    def in_flight(self) -> int:
        return self.count("NOTIFIED", "DOWNLOADING", "VERIFYING", "INSTALLING")

    @property
    def staged(self) -> int:
        """Downloaded and verified, waiting to install (two-phase delivery)."""
        return self.count("DOWNLOADED", "AWAITING_CONSENT", "AWAITING_INSTALL")

    @property
    def succeeded(self) -> int:
        return self.count("SUCCEEDED")

    @property
    def failed(self) -> int:
        return self.count("FAILED", "TIMED_OUT", "REJECTED", "ROLLED_BACK")

    @property
    def executed(self) -> int:
        return self.succeeded + self.failed

    @property
    def finished(self) -> int:
        return self.executed + self.count("CANCELLED")

    def success_rate(self) -> float | None:
        return None if self.executed == 0 else 100.0 * self.succeeded / self.executed

    def failure_rate(self) -> float | None:
        return None if self.executed == 0 else 100.0 * self.failed / self.executed


class EventKind(StrEnum):
    STARTED = "STARTED"
    WAVE_STARTED = "WAVE_STARTED"
    AUTO_PAUSED = "AUTO_PAUSED"
    AUTO_ABORTED = "AUTO_ABORTED"
    COMPLETED = "COMPLETED"


ALERT_EVENTS = frozenset({EventKind.AUTO_PAUSED, EventKind.AUTO_ABORTED, EventKind.COMPLETED})


@dataclass(frozen=True)
class CampaignEvent:
    kind: EventKind
    detail: str


@dataclass(frozen=True)
class Advance:
    state: CampaignState
    current_wave: int
    events: tuple[CampaignEvent, ...] = ()

    @property
    def reason(self) -> str | None:
        return self.events[-1].detail if self.events else None


@dataclass(frozen=True)
class Progress:
    """The inputs :func:`advance` reads: state, where the rollout is, and the counters."""

    state: CampaignState
    current_wave: int  # 0-based index into the waves
    sizes: tuple[int, ...]
    counters: CampaignCounters
    acknowledged_failures: int = 0  # failures in the current wave an operator resumed past
    enrolling: bool = False  # a continuous campaign still taking vehicles: it never completes by itself


def advance(progress: Progress, spec: CampaignSpec, now: datetime) -> Advance:
    """The next campaign state and the events that explain it; pure, so every tick agrees.

    Checks, in order: scheduled start, abort criteria (campaign-wide), the current wave's error
    threshold, then its success threshold (which opens the next wave) and completion.
    """
    state, wave, counters = progress.state, progress.current_wave, progress.counters
    if state is C.SCHEDULED:
        if spec.start_at is None or now >= spec.start_at:
            return Advance(C.RUNNING, wave, (CampaignEvent(EventKind.STARTED, "scheduled start reached"),))
        return Advance(state, wave)
    if state is not C.RUNNING:
        return Advance(state, wave)

    abort = spec.abort
    rate = counters.failure_rate()
    if counters.executed >= abort.min_executed and rate is not None and rate >= abort.failure_pct:
        detail = (
            f"failure rate {rate:.1f}% >= {abort.failure_pct:g}% after {counters.executed} executed "
            f"(minimum {abort.min_executed})"
        )
        return Advance(C.ABORTED, wave, (CampaignEvent(EventKind.AUTO_ABORTED, detail),))

    wave_spec, size = spec.waves[wave], progress.sizes[wave]
    failed = counters.wave_failed[wave] if wave < len(counters.wave_failed) else 0
    succeeded = counters.wave_succeeded[wave] if wave < len(counters.wave_succeeded) else 0
    if size > 0:
        error_pct = 100.0 * (failed - progress.acknowledged_failures) / size
        if error_pct > wave_spec.error_threshold_pct:
            detail = (
                f"wave {wave + 1}: {failed} of {size} failed ({error_pct:.1f}% > "
                f"error threshold {wave_spec.error_threshold_pct:g}%)"
            )
            return Advance(C.PAUSED, wave, (CampaignEvent(EventKind.AUTO_PAUSED, detail),))

    success_pct = 100.0 if size == 0 else 100.0 * succeeded / size
    last = wave == len(spec.waves) - 1
    if last:
        if counters.finished >= sum(progress.sizes) and not progress.enrolling:
            detail = f"{counters.succeeded} succeeded, {counters.failed} failed"
            return Advance(C.COMPLETED, wave, (CampaignEvent(EventKind.COMPLETED, detail),))
        return Advance(state, wave)
    if success_pct >= wave_spec.success_threshold_pct:
        detail = f"wave {wave + 1} reached {success_pct:.1f}% success; starting wave {wave + 2}"
        return Advance(state, wave + 1, (CampaignEvent(EventKind.WAVE_STARTED, detail),))
    if succeeded + failed >= size:
        detail = (
            f"wave {wave + 1} finished with {success_pct:.1f}% success < "
            f"{wave_spec.success_threshold_pct:g}% threshold"
        )
        return Advance(C.PAUSED, wave, (CampaignEvent(EventKind.AUTO_PAUSED, detail),))
    return Advance(state, wave)


class Campaign(BaseModel):
    """A campaign as stored: its spec and release, where the rollout is, and its counters."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    campaign_id: str
    spec: CampaignSpec
    release: FirmwareRelease
    state: CampaignState
    state_reason: str = ""
    current_wave: int = 0
    wave_sizes: tuple[int, ...]
    counters: CampaignCounters
    acknowledged_failures: int = 0
    version: int = 0
    created_at: datetime
    created_by: str
    updated_at: datetime
    approved_by: str | None = None
    # Each wave's roster cursor: positions before it need no more looking at (see the tick).
    roster_cursors: tuple[int, ...] = ()
    # Continuous campaigns: set by ``finish``; no vehicle joins after it and the campaign may complete.
    enrolment_closed: bool = False
    # How far enrolment has read the fleet's change feed (an adapter's opaque, ordered token).
    enrolment_watermark: str = ""

    @property
    def enrolling(self) -> bool:
        """Whether vehicles that match later still join (a continuous campaign not yet finished)."""
        return self.spec.continuous and not self.enrolment_closed

    @property
    def sizes(self) -> tuple[int, ...]:
        """Each wave's deployments: its roster (``wave_sizes``) plus the vehicles that joined it later."""
        return tuple(n + self.counters.joined_in(w) for w, n in enumerate(self.wave_sizes))

    gate: GateStatus | None = None  # the current (or last) wave's health gate

    @property
    def total(self) -> int:
        return sum(self.sizes)

    @property
    def in_flight(self) -> int:
        return self.counters.in_flight

    def cursor(self, wave: int) -> int:
        return self.roster_cursors[wave] if wave < len(self.roster_cursors) else 0

    def progress(self) -> Progress:
        return Progress(
            self.state,
            self.current_wave,
            self.sizes,
            self.counters,
            self.acknowledged_failures,
            self.enrolling,
        )

    def summary(self) -> dict[str, Any]:
        """The one flat summary of a campaign, for the CLI's tables and ``--json`` and the dashboard."""
        c = self.counters
        rate = c.success_rate()
        return {
            "campaign_id": self.campaign_id,
            "name": self.spec.name,
            "kind": self.spec.kind,
            "release": self.release.version,
            "state": self.state.value,
            "state_reason": self.state_reason,
            "wave": f"{self.current_wave + 1}/{len(self.wave_sizes)}",
            "current_wave": self.current_wave + 1,
            "waves": len(self.wave_sizes),
            "total": self.total,
            "in_flight": c.in_flight,
            "succeeded": c.succeeded,
            "failed": c.failed,
            "deferred": c.count("DEFERRED"),
            "staged": c.staged,
            "awaiting_consent": c.count("AWAITING_CONSENT"),
            "install_policy": self.spec.delivery.install.value,
            "download_networks": self.spec.delivery.download_networks.value,
            "bytes_wifi": c.bytes_wifi,
            "bytes_cellular": c.bytes_cellular,
            "executed": c.executed,
            "progress": c.finished / self.total if self.total else 0.0,
            "success_rate": None if rate is None else round(rate, 1),
            "active": self.state in ACTIVE_STATES,
            "created_by": self.created_by,
            "critical": self.spec.critical,
            "approved_by": self.approved_by,
            "continuous": self.spec.continuous,
            "enrolling": self.enrolling,
            "joined_later": c.joined,
            "created_at": self.created_at.isoformat(),
            "soak_minutes": self.spec.soak_minutes,
            "gate": None if self.gate is None else self.gate.summary(),
        }


# Fields an update of the campaign item may set (the rest are written once, or are counters).
UPDATABLE_FIELDS = frozenset(
    {
        "state",
        "state_reason",
        "current_wave",
        "acknowledged_failures",
        "updated_at",
        "approved_by",
        "enrolment_closed",
        "gate",
    }
)
