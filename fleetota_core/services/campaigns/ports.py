"""What the campaign use cases need from the outside world; AWS adapters and in-memory fakes implement it.

Every port takes and returns domain types. Hints are ``(at, vin)`` pairs: "look at this deployment
at this time", filed per campaign in one of two lanes (``ACTIVE`` in flight, ``WAIT`` waiting).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from fleetota_core.domain.approval import ApprovalPolicy
from fleetota_core.errors import ResourceNotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from fleetota_core.domain.campaign import Campaign
    from fleetota_core.domain.creation import NewDeployments
    from fleetota_core.domain.deployment import CounterKey, Deployment, DeploymentState, Lane, Transition
    from fleetota_core.domain.enrolment import Candidate, Enrolment, FleetChangeBatch
    from fleetota_core.domain.firmware import FirmwareRelease
    from fleetota_core.domain.job_document import SignedJobDocument
    from fleetota_core.domain.vehicle import Vehicle
    from fleetota_core.domain.vehicle_health import SoakBaseline

Hint = tuple[datetime, str]


class Campaigns(Protocol):
    def get(self, campaign_id: str) -> Campaign | None: ...
    def list_all(self) -> list[Campaign]: ...
    def put_new(self, campaign: Campaign) -> None: ...
    def update(self, campaign_id: str, expected_version: int, changes: Mapping[str, object]) -> bool:
        """Set ``changes`` (Campaign fields) and bump the version if it is still ``expected_version``."""
        ...

    def advance_cursor(self, campaign_id: str, wave: int, position: int) -> None: ...
    def add_counters(
        self,
        campaign_id: str,
        deltas: Mapping[CounterKey, int],
        *,
        in_flight_below: int | None = None,
        never_negative: bool = False,
    ) -> bool:
        """Add ``deltas`` at once; False if the in-flight cap or a ``never_negative`` floor refused."""
        ...

    def set_counters(self, campaign_id: str, counters: Mapping[CounterKey, int]) -> None: ...
    def reserve_cellular(self, campaign_id: str, size_bytes: int, budget_bytes: int) -> bool:
        """Add ``size_bytes`` to the cellular reservations if they stay within ``budget_bytes``."""
        ...


class Deployments(Protocol):
    def put_many(self, deployments: Iterable[Deployment]) -> int: ...
    def put_new(self, new: NewDeployments) -> int:
        """Write a new campaign's deployments (``put_many`` of ``new.deployments()``); the count."""
        ...

    def get(self, campaign_id: str, vin: str) -> Deployment | None: ...
    def get_many(self, campaign_id: str, vins: list[str]) -> dict[str, Deployment]: ...
    def in_state(self, campaign_id: str, state: DeploymentState, wave: int = 0) -> Iterator[Deployment]:
        """Deployments bucketed with ``state``: waiting ones of ``wave``, in flight, failed, ..."""
        ...

    def for_campaign(self, campaign_id: str, limit: int | None = None) -> list[Deployment]: ...
    def for_vin(self, vin: str) -> list[Deployment]: ...
    def apply(self, change: Transition) -> bool:
        """The conditional write of one transition alone (no counters, no hints); False if it lost."""
        ...

    def touch(
        self,
        campaign_id: str,
        vin: str,
        expected_state: DeploymentState,
        expected_version: int,
        sets: Mapping[str, object],
    ) -> bool: ...


class Schedule(Protocol):
    def put_roster(self, campaign_id: str, wave: int, vins: list[str]) -> None: ...
    def roster(self, campaign_id: str, wave: int, start: int, count: int) -> list[str]: ...
    def hint(self, campaign_id: str, lane: Lane, at: datetime, vin: str) -> None: ...
    def hint_many(self, campaign_id: str, lane: Lane, hints: Iterable[Hint]) -> None: ...
    def drop_many(self, campaign_id: str, lane: Lane, hints: Iterable[Hint]) -> None: ...
    def existing(self, campaign_id: str, lane: Lane, hints: list[Hint]) -> set[Hint]: ...
    def due(
        self, campaign_id: str, lane: Lane, now: datetime, limit: int, after: Hint | None = None
    ) -> list[Hint]: ...


class Vehicles(Protocol):
    def get_many(self, vins: list[str]) -> dict[str, Vehicle]: ...
    def all(self) -> list[Vehicle]: ...
    def candidates(self) -> list[Candidate]:
        """The vehicles of ``all()`` as creation targets them: identity and installed version only."""
        ...


class FleetChanges(Protocol):
    """Which vehicles' states were written since a point, in order, for continuous campaigns.

    Tokens are opaque and sort in feed order (a later token is a larger string). The feed keeps its
    own clock: its entries are stamped by their writers, not by the tick's (possibly simulated) time.
    """

    def start(self) -> str:
        """A token from which every vehicle state written from now on is read."""
        ...

    def since(self, token: str, limit: int) -> list[FleetChangeBatch] | None:
        """Up to ``limit`` batches after ``token``, oldest first; None when the feed no longer reaches
        back to ``token`` (its changes were dropped): then read :meth:`whole_fleet` once."""
        ...

    def whole_fleet(self) -> FleetChangeBatch:
        """Every vehicle, with a token from which the feed carries on."""
        ...


class Enrolments(Protocol):
    """Vehicles joining a continuous campaign."""

    def enrol(self, deployment: Deployment) -> Enrolment:
        """Create ``deployment`` (PENDING) and count it on its campaign in one atomic write, only if
        the campaign has no deployment for the vehicle and is still taking vehicles."""
        ...

    def move_watermark(self, campaign_id: str, token: str) -> None:
        """Record that enrolment has read the feed up to ``token``; never moves back."""
        ...


class Releases(Protocol):
    def release_exists(self, version: str) -> bool: ...
    def artifact_key(self, version: str, filename: str) -> str: ...
    def put_artifact(self, version: str, filename: str, body: bytes, sha256_hex: str) -> str: ...
    def delete_artifact(self, key: str) -> None: ...
    def get_artifact(self, key: str, max_bytes: int) -> bytes | None:
        """A stored artifact's bytes (None if missing); ``InputError`` past ``max_bytes``."""
        ...

    def artifact_facts(self, key: str) -> tuple[int, str | None] | None:
        """The stored artifact's size and recorded sha256 (None if not recorded); None if it is missing."""
        ...

    def put_release(self, release: FirmwareRelease) -> None: ...
    def get_release(self, version: str) -> FirmwareRelease | None: ...
    def list_releases(self) -> list[FirmwareRelease]: ...
    def presigned_get(self, key: str, expires_s: int) -> str: ...
    def put_job(self, vin: str, deployment_id: str, signed: SignedJobDocument) -> str: ...


class Signer(Protocol):
    def sign(self, payload: bytes) -> tuple[str, str]: ...
    def public_key_der(self) -> bytes: ...


class Notifier(Protocol):
    def notify_vehicles(self, notices: list[tuple[str, dict[str, Any]]]) -> set[str]: ...
    def alert(self, subject: str, message: dict[str, Any]) -> str: ...


class Metrics(Protocol):
    def publish(self, data: list[tuple[str, float, str, dict[str, str]]], ts: datetime) -> None: ...


class Audit(Protocol):
    def record(
        self,
        entity_id: str,
        action: str,
        operator: str,
        reason: str = "",
        detail: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> None: ...

    def history(self, entity_id: str, limit: int = 100) -> list[dict[str, Any]]: ...


class SoakBaselines(Protocol):
    """The health gate's record of each sampled vehicle's counters when a wave's soak began."""

    def put(self, campaign_id: str, wave: int, baseline: SoakBaseline) -> None: ...
    def get(self, campaign_id: str, wave: int) -> SoakBaseline | None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...
    def sleep(self, seconds: float) -> None: ...


@dataclass
class CampaignPorts:
    """Everything the campaign use cases reach; one composition root per entry point builds it."""

    campaigns: Campaigns
    deployments: Deployments
    schedule: Schedule
    vehicles: Vehicles
    releases: Releases
    image_signer: Signer  # release manifests (the image key)
    director_signer: Signer  # job documents (the director key)
    notifier: Notifier
    metrics: Metrics
    audit: Audit
    clock: Clock
    fleet_changes: FleetChanges
    enrolments: Enrolments
    # Which campaigns wait for a second operator (the deployment's setting, not a port).
    approval: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    # Where the health gate keeps soak baselines; None: a campaign with a soak cannot open its next wave.
    soak_baselines: SoakBaselines | None = None

    def campaign(self, campaign_id: str) -> Campaign:
        campaign = self.campaigns.get(campaign_id)
        if campaign is None:
            raise ResourceNotFoundError(f"campaign {campaign_id} does not exist")
        return campaign


class SystemClock:
    """The wall clock (UTC) and a real sleep."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
