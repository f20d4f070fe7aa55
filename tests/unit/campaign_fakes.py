"""In-memory fakes of the campaign ports, with the same conditional-write semantics as DynamoDB.

Each fake is a small, honest model of its adapter: versions and states are checked on every
conditional write, counters refuse to pass the in-flight cap or go below zero when asked, hints are
kept sorted by time. ``CampaignStoreFake.lowest`` records the smallest value any counter ever had,
so a test can assert that no reader could have seen a negative count.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.domain.approval import ApprovalPolicy
from fleetota_core.domain.campaign import Campaign, CampaignCounters
from fleetota_core.domain.deployment import (
    BYTES_CELLULAR,
    BYTES_WIFI,
    CELLULAR_RESERVED,
    IN_FLIGHT_COUNT,
    CounterKey,
    Deployment,
    DeploymentState,
    Lane,
    Transition,
    enrolment_deltas,
    state_count,
    wave_joined,
    wave_tallies,
)
from fleetota_core.domain.enrolment import Candidate, ChangedVehicle, Enrolment, FleetChangeBatch
from fleetota_core.errors import ConflictError, InputError
from fleetota_core.services.campaigns.ports import CampaignPorts

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from fleetota_core.domain.creation import NewDeployments
    from fleetota_core.domain.firmware import FirmwareRelease
    from fleetota_core.domain.job_document import SignedJobDocument
    from fleetota_core.domain.vehicle import Vehicle
    from fleetota_core.domain.vehicle_health import SoakBaseline

S = DeploymentState
Hint = tuple[datetime, str]
_BUCKETS = {
    S.FAILED: {S.FAILED, S.TIMED_OUT},
    S.SUCCEEDED: {S.SUCCEEDED},
}


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.at = start or datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[], None] | None = None

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> datetime:
        self.at += timedelta(seconds=seconds)
        return self.at

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep()


@dataclass
class _CampaignRow:
    campaign: Campaign
    counters: dict[CounterKey, int]
    cursors: dict[int, int] = field(default_factory=dict)


class CampaignStoreFake:
    def __init__(self) -> None:
        self.rows: dict[str, _CampaignRow] = {}
        self.lock = threading.Lock()
        self.lowest: dict[CounterKey, int] = {}
        self.writes = 0

    def put_new(self, campaign: Campaign) -> None:
        with self.lock:
            if campaign.campaign_id in self.rows:
                raise ConflictError(f"campaign {campaign.campaign_id} already exists")
            c = campaign.counters
            counters = {state_count(S(s)): n for s, n in c.states.items()}
            counters[IN_FLIGHT_COUNT] = c.in_flight
            for wave in range(len(campaign.wave_sizes)):
                ok, fail, wait = wave_tallies(wave)
                counters[ok], counters[fail], counters[wait] = (
                    c.wave_succeeded[wave],
                    c.wave_failed[wave],
                    c.wave_waiting[wave],
                )
                counters[wave_joined(wave)] = c.joined_in(wave)
            self.rows[campaign.campaign_id] = _CampaignRow(campaign, counters)

    def get(self, campaign_id: str) -> Campaign | None:
        with self.lock:
            row = self.rows.get(campaign_id)
            return None if row is None else self._read(row)

    def list_all(self) -> list[Campaign]:
        with self.lock:
            return [self._read(row) for row in self.rows.values()]

    def _read(self, row: _CampaignRow) -> Campaign:
        waves = len(row.campaign.wave_sizes)
        tallies = [wave_tallies(w) for w in range(waves)]
        counters = CampaignCounters(
            states={s.value: row.counters.get(state_count(s), 0) for s in S},
            wave_succeeded=[row.counters.get(ok, 0) for ok, _, _ in tallies],
            wave_failed=[row.counters.get(fail, 0) for _, fail, _ in tallies],
            wave_waiting=[row.counters.get(wait, 0) for _, _, wait in tallies],
            wave_joined=[row.counters.get(wave_joined(w), 0) for w in range(waves)],
            delivery={k.name: n for k, n in row.counters.items() if k.kind == "delivery" and k.name},
            bytes_wifi=row.counters.get(BYTES_WIFI, 0),
            bytes_cellular=row.counters.get(BYTES_CELLULAR, 0),
            cellular_reserved=row.counters.get(CELLULAR_RESERVED, 0),
        )
        cursors = tuple(row.cursors.get(w, 0) for w in range(waves))
        return row.campaign.model_copy(update={"counters": counters, "roster_cursors": cursors})

    def update(self, campaign_id: str, expected_version: int, changes: Mapping[str, object]) -> bool:
        with self.lock:
            self.writes += 1
            row = self.rows[campaign_id]
            if row.campaign.version != expected_version:
                return False
            row.campaign = row.campaign.model_copy(update={**changes, "version": expected_version + 1})
            return True

    def advance_cursor(self, campaign_id: str, wave: int, position: int) -> None:
        with self.lock:
            self.writes += 1
            row = self.rows[campaign_id]
            row.cursors[wave] = max(row.cursors.get(wave, 0), position)

    def add_counters(
        self,
        campaign_id: str,
        deltas: Mapping[CounterKey, int],
        *,
        in_flight_below: int | None = None,
        never_negative: bool = False,
    ) -> bool:
        with self.lock:
            self.writes += 1
            counters = self.rows[campaign_id].counters
            if in_flight_below is not None and counters.get(IN_FLIGHT_COUNT, 0) >= in_flight_below:
                return False
            if never_negative and any(counters.get(k, 0) + v < 0 for k, v in deltas.items() if v < 0):
                return False
            for key, delta in deltas.items():
                counters[key] = counters.get(key, 0) + delta
                self.lowest[key] = min(self.lowest.get(key, 0), counters[key])
            return True

    def set_counters(self, campaign_id: str, counters: Mapping[CounterKey, int]) -> None:
        with self.lock:
            self.rows[campaign_id].counters.update(counters)

    def reserve_cellular(self, campaign_id: str, size_bytes: int, budget_bytes: int) -> bool:
        with self.lock:
            counters = self.rows[campaign_id].counters
            reserved = counters.get(CELLULAR_RESERVED, 0)
            if size_bytes > 0 and reserved + size_bytes > budget_bytes:
                return False
            counters[CELLULAR_RESERVED] = reserved + size_bytes
            return True


class DeploymentStoreFake:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Deployment] = {}
        self.lock = threading.Lock()
        # Called (outside the lock) just before and just after a transition's conditional write.
        self.before_apply: Callable[[Transition], None] | None = None
        self.after_apply: Callable[[Transition, bool], None] | None = None

    def put_many(self, deployments: Iterable[Deployment]) -> int:
        count = 0
        with self.lock:
            for d in deployments:
                self.items[(d.campaign_id, d.vin)] = d
                count += 1
        return count

    def put_new(self, new: NewDeployments) -> int:
        return self.put_many(new.deployments())

    def get(self, campaign_id: str, vin: str) -> Deployment | None:
        with self.lock:
            return self.items.get((campaign_id, vin))

    def get_many(self, campaign_id: str, vins: list[str]) -> dict[str, Deployment]:
        with self.lock:
            return {v: self.items[(campaign_id, v)] for v in vins if (campaign_id, v) in self.items}

    def in_state(self, campaign_id: str, state: DeploymentState, wave: int = 0) -> Iterator[Deployment]:
        states = _BUCKETS.get(state, {state})
        with self.lock:
            found = [
                d
                for (c, _), d in self.items.items()
                if c == campaign_id and d.state in states and (state is not S.PENDING or d.wave == wave)
            ]
        yield from found

    def for_campaign(self, campaign_id: str, limit: int | None = None) -> list[Deployment]:
        with self.lock:
            found = [d for (c, _), d in self.items.items() if c == campaign_id]
        return found[:limit] if limit is not None else found

    def for_vin(self, vin: str) -> list[Deployment]:
        with self.lock:
            return [d for (_, v), d in self.items.items() if v == vin]

    def apply(self, change: Transition) -> bool:
        if self.before_apply is not None:
            self.before_apply(change)
        with self.lock:
            key = (change.campaign_id, change.vin)
            current = self.items.get(key)
            applied = (
                current is not None
                and current.state is change.old_state
                and current.version == change.old_version
            )
            if applied and current is not None:
                fields: dict[str, Any] = {**change.sets, **dict.fromkeys(change.clears)}
                if "notice_sent" in change.clears:
                    fields["notice_sent"] = False
                if change.next_action_at is not None:
                    fields["next_action_at"] = change.next_action_at
                self.items[key] = replace(
                    current, **fields, state=change.new_state, version=change.old_version + 1
                )
        if self.after_apply is not None:
            self.after_apply(change, applied)
        return applied

    def touch(
        self,
        campaign_id: str,
        vin: str,
        expected_state: DeploymentState,
        expected_version: int,
        sets: Mapping[str, object],
    ) -> bool:
        with self.lock:
            key = (campaign_id, vin)
            current = self.items.get(key)
            if current is None or current.state is not expected_state or current.version != expected_version:
                return False
            self.items[key] = replace(current, **sets, version=expected_version + 1)  # type: ignore[arg-type]
            return True


class ScheduleFake:
    def __init__(self) -> None:
        self.rosters: dict[tuple[str, int], list[str]] = {}
        self.hints: dict[tuple[str, Lane], set[Hint]] = {}
        self.lock = threading.Lock()
        self.after_hint: Callable[[Lane, Hint], None] | None = None  # after a single hint is filed

    def put_roster(self, campaign_id: str, wave: int, vins: list[str]) -> None:
        self.rosters[(campaign_id, wave)] = list(vins)

    def roster(self, campaign_id: str, wave: int, start: int, count: int) -> list[str]:
        return self.rosters.get((campaign_id, wave), [])[start : start + count]

    def hint(self, campaign_id: str, lane: Lane, at: datetime, vin: str) -> None:
        with self.lock:
            self.hints.setdefault((campaign_id, lane), set()).add((at, vin))
        if self.after_hint is not None:
            self.after_hint(lane, (at, vin))

    def hint_many(self, campaign_id: str, lane: Lane, hints: Iterable[Hint]) -> None:
        with self.lock:
            self.hints.setdefault((campaign_id, lane), set()).update(hints)

    def drop_many(self, campaign_id: str, lane: Lane, hints: Iterable[Hint]) -> None:
        with self.lock:
            self.hints.setdefault((campaign_id, lane), set()).difference_update(hints)

    def existing(self, campaign_id: str, lane: Lane, hints: list[Hint]) -> set[Hint]:
        with self.lock:
            return set(hints) & self.hints.get((campaign_id, lane), set())

    def due(
        self, campaign_id: str, lane: Lane, now: datetime, limit: int, after: Hint | None = None
    ) -> list[Hint]:
        with self.lock:
            filed = sorted(self.hints.get((campaign_id, lane), set()))
        return [h for h in filed if h[0] <= now and (after is None or h > after)][:limit]

    def of(self, campaign_id: str, lane: Lane, vin: str) -> list[datetime]:
        """When ``vin`` is hinted in ``lane`` (a test's look at the schedule)."""
        return sorted(at for at, v in self.hints.get((campaign_id, lane), set()) if v == vin)


class VehiclesFake:
    def __init__(self, vehicles: Iterable[Vehicle] = ()) -> None:
        self.by_vin = {v.vin: v for v in vehicles}

    def put(self, vehicle: Vehicle) -> None:
        self.by_vin[vehicle.vin] = vehicle

    def get_many(self, vins: list[str]) -> dict[str, Vehicle]:
        return {v: self.by_vin[v] for v in vins if v in self.by_vin}

    def all(self) -> list[Vehicle]:
        return list(self.by_vin.values())

    def candidates(self) -> list[Candidate]:
        return [Candidate(v.vin, v.model, v.hw_rev, v.region, v.firmware_version) for v in self.all()]


class ReleasesFake:
    def __init__(self) -> None:
        self.releases: dict[str, FirmwareRelease] = {}
        self.artifacts: dict[str, bytes] = {}
        self.recorded_sha256: dict[str, str] = {}
        self.jobs: dict[str, SignedJobDocument] = {}

    def release_exists(self, version: str) -> bool:
        return version in self.releases

    def artifact_key(self, version: str, filename: str) -> str:
        return f"releases/{version}/{filename}"

    def put_artifact(self, version: str, filename: str, body: bytes, sha256_hex: str) -> str:
        key = self.artifact_key(version, filename)
        self.artifacts[key] = body
        self.recorded_sha256[key] = sha256_hex
        return key

    def artifact_facts(self, key: str) -> tuple[int, str | None] | None:
        body = self.artifacts.get(key)
        return None if body is None else (len(body), self.recorded_sha256.get(key))

    def delete_artifact(self, key: str) -> None:
        self.artifacts.pop(key, None)

    def get_artifact(self, key: str, max_bytes: int) -> bytes | None:
        body = self.artifacts.get(key)
        if body is not None and len(body) > max_bytes:
            raise InputError(f"artifact {key} is larger than {max_bytes} bytes")
        return body

    def put_release(self, release: FirmwareRelease) -> None:
        self.releases[release.version] = release

    def get_release(self, version: str) -> FirmwareRelease | None:
        return self.releases.get(version)

    def list_releases(self) -> list[FirmwareRelease]:
        return list(self.releases.values())

    def presigned_get(self, key: str, expires_s: int) -> str:
        return f"https://firmware.example/{key}?expires={expires_s}"

    def put_job(self, vin: str, deployment_id: str, signed: SignedJobDocument) -> str:
        key = f"jobs/{vin}/{deployment_id}.json"
        self.jobs[key] = signed
        return key


class SignerFake:
    """Signs with a real P-256 key, so signatures verify as they would with KMS."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self.key = ec.generate_private_key(ec.SECP256R1())

    def sign(self, payload: bytes) -> tuple[str, str]:
        import base64

        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        signature = self.key.sign(payload, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode(), "fake-key"

    def public_key_der(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class NotifierFake:
    def __init__(self) -> None:
        self.notices: list[tuple[str, dict[str, Any]]] = []
        self.alerts: list[tuple[str, dict[str, Any]]] = []
        self.unreachable: set[str] = set()  # VINs whose notices fail to publish
        self.lock = threading.Lock()

    def notify_vehicles(self, notices: list[tuple[str, dict[str, Any]]]) -> set[str]:
        with self.lock:
            sent = [(vin, n) for vin, n in notices if vin not in self.unreachable]
            self.notices.extend(sent)
        return {vin for vin, _ in sent}

    def alert(self, subject: str, message: dict[str, Any]) -> str:
        self.alerts.append((subject, message))
        return f"alert-{len(self.alerts)}"

    def notified(self, vin: str) -> int:
        return sum(1 for v, _ in self.notices if v == vin)


class MetricsFake:
    def __init__(self) -> None:
        self.published: list[tuple[list[tuple[str, float, str, dict[str, str]]], datetime]] = []

    def publish(self, data: list[tuple[str, float, str, dict[str, str]]], ts: datetime) -> None:
        self.published.append((data, ts))


class AuditFake:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def record(
        self,
        entity_id: str,
        action: str,
        operator: str,
        reason: str = "",
        detail: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> None:
        self.events.append(
            {
                "entity_id": entity_id,
                "action": action,
                "operator": operator,
                "reason": reason,
                "detail": detail,
            }
        )

    def history(self, entity_id: str, limit: int = 100) -> list[dict[str, Any]]:
        return [e for e in reversed(self.events) if e["entity_id"] == entity_id][:limit]

    def actions(self, entity_id: str) -> list[str]:
        return [e["action"] for e in self.events if e["entity_id"] == entity_id]


class EnrolmentsFake:
    """Joins a vehicle atomically (deployment created if absent + counters), like the transaction."""

    def __init__(self, campaigns: CampaignStoreFake, deployments: DeploymentStoreFake) -> None:
        self.campaigns = campaigns
        self.deployments = deployments
        self.attempts: list[str] = []
        # Called just after a successful enrolment (a test may raise here to play a crash).
        self.after_enrol: Callable[[Deployment], None] | None = None

    def enrol(self, deployment: Deployment) -> Enrolment:
        self.attempts.append(deployment.vin)
        with self.campaigns.lock, self.deployments.lock:
            key = (deployment.campaign_id, deployment.vin)
            if key in self.deployments.items:
                return Enrolment.ALREADY
            row = self.campaigns.rows[deployment.campaign_id]
            campaign = row.campaign
            if campaign.enrolment_closed or campaign.state not in ("RUNNING", "PAUSED"):
                return Enrolment.CLOSED
            self.deployments.items[key] = deployment
            for counter, delta in enrolment_deltas(deployment.wave).items():
                row.counters[counter] = row.counters.get(counter, 0) + delta
        if self.after_enrol is not None:
            self.after_enrol(deployment)
        return Enrolment.JOINED

    def move_watermark(self, campaign_id: str, token: str) -> None:
        with self.campaigns.lock:
            row = self.campaigns.rows[campaign_id]
            if token > row.campaign.enrolment_watermark:
                row.campaign = row.campaign.model_copy(update={"enrolment_watermark": token})


class FleetChangesFake:
    """The change feed as a list of batches with ordered tokens; ``horizon`` plays its retention."""

    def __init__(self, vehicles: VehiclesFake, clock: FakeClock) -> None:
        self.vehicles = vehicles
        self.clock = clock
        self.batches: list[FleetChangeBatch] = []
        self.horizon = ""  # tokens before this are no longer reachable
        self.whole_reads = 0

    @staticmethod
    def token(at: datetime) -> str:
        return at.isoformat()

    def written(self, at: datetime, *vehicles: Vehicle) -> None:
        """Vehicles the processor wrote at ``at`` (one feed batch)."""
        changes = [ChangedVehicle(v.vin, v.model, v.hw_rev, v.region, v.firmware_version) for v in vehicles]
        self.batches.append(FleetChangeBatch(f"{self.token(at)}#{len(self.batches):06d}", changes))

    def start(self) -> str:
        return self.token(self.clock.now())

    def since(self, token: str, limit: int) -> list[FleetChangeBatch] | None:
        if not token or token < self.horizon:
            return None
        return [b for b in self.batches if token < b.token <= self.token(self.clock.now())][:limit]

    def whole_fleet(self) -> FleetChangeBatch:
        now = self.clock.now()
        self.whole_reads += 1
        everyone = self.vehicles.all()
        changes = [ChangedVehicle(v.vin, v.model, v.hw_rev, v.region, v.firmware_version) for v in everyone]
        return FleetChangeBatch(f"{self.token(now)}#~", changes)


class SoakBaselinesFake:
    def __init__(self) -> None:
        self.baselines: dict[tuple[str, int], SoakBaseline] = {}

    def put(self, campaign_id: str, wave: int, baseline: SoakBaseline) -> None:
        self.baselines[(campaign_id, wave)] = baseline

    def get(self, campaign_id: str, wave: int) -> SoakBaseline | None:
        return self.baselines.get((campaign_id, wave))


@dataclass
class FakeWorld:
    """The fakes behind one :class:`CampaignPorts`, kept at hand for a test's assertions."""

    clock: FakeClock = field(default_factory=FakeClock)
    campaigns: CampaignStoreFake = field(default_factory=CampaignStoreFake)
    deployments: DeploymentStoreFake = field(default_factory=DeploymentStoreFake)
    schedule: ScheduleFake = field(default_factory=ScheduleFake)
    vehicles: VehiclesFake = field(default_factory=VehiclesFake)
    releases: ReleasesFake = field(default_factory=ReleasesFake)
    image_signer: SignerFake = field(default_factory=SignerFake)
    director_signer: SignerFake = field(default_factory=SignerFake)
    notifier: NotifierFake = field(default_factory=NotifierFake)
    metrics: MetricsFake = field(default_factory=MetricsFake)
    audit: AuditFake = field(default_factory=AuditFake)
    approval: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    enrolments: EnrolmentsFake = field(init=False)
    fleet_changes: FleetChangesFake = field(init=False)

    def __post_init__(self) -> None:
        self.enrolments = EnrolmentsFake(self.campaigns, self.deployments)
        self.fleet_changes = FleetChangesFake(self.vehicles, self.clock)

    soak_baselines: SoakBaselinesFake = field(default_factory=SoakBaselinesFake)

    @property
    def ports(self) -> CampaignPorts:
        return CampaignPorts(
            campaigns=self.campaigns,
            deployments=self.deployments,
            schedule=self.schedule,
            vehicles=self.vehicles,
            releases=self.releases,
            image_signer=self.image_signer,
            director_signer=self.director_signer,
            notifier=self.notifier,
            metrics=self.metrics,
            audit=self.audit,
            clock=self.clock,
            fleet_changes=self.fleet_changes,
            enrolments=self.enrolments,
            approval=self.approval,
            soak_baselines=self.soak_baselines,
        )
