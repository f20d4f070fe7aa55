"""In-memory fakes of the ingest ports and a telemetry record builder, for the ingest unit tests."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from fleetota_core.domain.enrichment import StoredState, not_after_ms
from fleetota_core.domain.registry_changes import RegistryChanges
from fleetota_core.domain.report_signature import canonical_report, public_key_pem, sign_payload
from fleetota_core.domain.vehicle_identity import RegisteredVehicle
from fleetota_core.domain.vin import with_check_digit, year_code
from fleetota_core.errors import ResourceNotFoundError, TransientAWSError
from fleetota_core.services.ingest.ports import ObjectRef, VehicleWrite
from fleetota_core.services.ingest.telemetry_object import IngestPorts

NOW = datetime(2026, 11, 26, 20, 0, 0, tzinfo=UTC)


def vin(n: int) -> str:
    return with_check_digit(f"5YJ3E1EA0{year_code(2023)}F{n:06d}")


def record(n: int = 0, seq: Any = 1, ts: datetime | str | None = None, **changes: Any) -> dict[str, Any]:
    """A valid reading of vehicle ``n`` in San Francisco; ``changes`` override top-level fields."""
    if not isinstance(ts, str):
        ts = (ts or NOW - timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
    body: dict[str, Any] = {
        "schema_version": 1,
        "vin": vin(n),
        "ts": ts,
        "seq": seq,
        "model": "Model 3",
        "hw_rev": "HW3",
        "position": {"lat": 37.77, "lon": -122.42, "speed_kph": 30.0, "heading_deg": 90.0},
        "battery": {"soc_pct": 55.0, "voltage_v": 390.0, "temp_c": 24.0, "charging": False},
        "drive_state": "driving",
        "connectivity": {"network": "LTE", "signal_dbm": -85},
        "odometer_km": 1000.0,
        "firmware_version": "1.0.0",
        "ota": None,
    }
    body.update(changes)
    return body


def ndjson(*items: dict[str, Any] | bytes | str) -> bytes:
    lines = [
        i if isinstance(i, bytes) else (i if isinstance(i, str) else json.dumps(i)).encode() for i in items
    ]
    return gzip.compress(b"\n".join(lines) + b"\n")


class FakeObjects:
    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.failures: list[Exception] = []
        self.reads = 0

    def put(self, key: str, body: bytes, etag: str = "etag-1") -> ObjectRef:
        self.bodies[key] = body
        return ObjectRef("telemetry", key, etag=etag)

    def get(self, ref: ObjectRef) -> bytes:
        self.reads += 1
        if self.failures:
            raise self.failures.pop(0)
        if ref.key not in self.bodies:
            raise ResourceNotFoundError(f"{ref.key} is gone")
        return self.bodies[ref.key]


class FakeQuarantine:
    def __init__(self) -> None:
        self.lines: dict[str, list[Any]] = {}
        self.objects: dict[str, tuple[str, str]] = {}
        self.object_counts: dict[str, dict[str, int]] = {}

    def put_lines(self, ref: ObjectRef, lines: list[Any], now: datetime) -> str:
        self.lines[ref.key] = list(lines)
        return f"quarantine/records/{ref.key}"

    def put_object_reference(
        self, ref: ObjectRef, reason: str, detail: str, now: datetime, counts: Any = None
    ) -> str:
        self.objects[ref.key] = (reason, detail)
        self.object_counts[ref.key] = dict(counts or {})
        return f"quarantine/objects/{ref.key}"


class FakeVehicles:
    """Keeps the full written state and honours the same (ts, seq) condition as the table."""

    def __init__(self) -> None:
        self.states: dict[str, Any] = {}
        self.writes = 0
        self.read_calls: list[list[str]] = []  # the VINs of each get_many call
        self.update_calls: list[list[str]] = []  # the VINs of each update_many call (writes without a read)
        self.committed_writes: list[tuple[list[str], list[str]]] = []  # (written, refused) VINs per commit
        self.now = NOW  # the table's clock, for the condition's "stored in the future" clause

    def get_many(self, vins: list[str]) -> dict[str, StoredState]:
        self.read_calls.append(list(vins))
        return {
            v: StoredState(
                last_ts_ms=s.last_ts_ms,
                last_seq=s.last_seq,
                drive_state=s.drive_state,
                online=s.online,
                firmware_version=s.firmware_version,
                battery_category=s.battery_category,
                charging=s.charging,
                needs_update=s.needs_update,
                region=s.region,
                lat=s.lat,
                lon=s.lon,
                ota_status=s.ota_status,
                ota_campaign_id=s.ota_campaign_id,
                health_events=None if s.health is None else s.health.events,
            )
            for v, s in self.states.items()
            if v in vins
        }

    def _newer(self, state: Any) -> bool:
        old = self.states.get(state.vin)
        return (
            old is None
            or (state.last_ts_ms, state.last_seq) > (old.last_ts_ms, old.last_seq)
            or old.last_ts_ms > not_after_ms(self.now)
        )

    def put_many(self, states: list[Any]) -> tuple[int, int]:
        written = 0
        for state in states:
            if self._newer(state):
                self.states[state.vin] = state
                written += 1
        self.writes += written
        return written, len(states) - written

    def update_many(self, states: list[Any]) -> tuple[int, int]:
        """As the table's UpdateItem: the stored OTA status stays when the state has none."""
        self.update_calls.append([s.vin for s in states])
        written = 0
        for state in states:
            if self._newer(state):
                old = self.states.get(state.vin)
                if state.ota_status is None and old is not None:
                    state = replace(state, ota_status=old.ota_status, ota_campaign_id=old.ota_campaign_id)
                self.states[state.vin] = state
                written += 1
        self.writes += written
        return written, len(states) - written

    def commit_items(self, writes: list[VehicleWrite]) -> list[tuple[FakeVehicles, VehicleWrite]]:
        return [(self, w) for w in writes]  # each names its table, as a TransactWriteItems item does

    def committed(self, written: list[VehicleWrite], refused: list[VehicleWrite]) -> None:
        self.committed_writes.append(([w.state.vin for w in written], [w.state.vin for w in refused]))


class FakeLedger:
    def __init__(self) -> None:
        self.markers: dict[tuple[str, str], int] = {}
        self.counters: Counter[str] = Counter()
        self.fail_commits = 0
        self.reads = self.writes = 0  # processed_many and commit_many / commit_carrying calls

    def processed_records(self, ref: ObjectRef) -> int | None:
        return self.markers.get((ref.key, ref.version_tag))

    def processed_many(self, refs: Any) -> dict[tuple[str, str, str], int]:
        self.reads += 1
        return {
            r.identity: self.markers[(r.key, r.version_tag)]
            for r in refs
            if (r.key, r.version_tag) in self.markers
        }

    def commit_many(self, commits: Any, now: datetime) -> list[ObjectRef]:
        self.writes += 1
        if self.fail_commits:
            self.fail_commits -= 1
            raise TransientAWSError("ledger: AWS ThrottlingException (retryable)")
        already = [ref for ref, _ in commits if (ref.key, ref.version_tag) in self.markers]
        for ref, counters in commits:
            if ref not in already:
                self.markers[(ref.key, ref.version_tag)] = counters.get("received", 0)
                self.counters.update(counters)
        return already

    def commit_carrying(
        self, commits: Any, items: list[tuple[FakeVehicles, VehicleWrite]], now: datetime
    ) -> tuple[dict[int, int], set[int]]:
        """As DynamoDB's transaction: every condition holds and all is written, or nothing is."""
        self.writes += 1
        if self.fail_commits:
            self.fail_commits -= 1
            raise TransientAWSError("ledger: AWS ThrottlingException (retryable)")
        assert len(commits) + len(items) + 1 <= 100, "over DynamoDB's 100 items per transaction"
        assert len({w.state.vin for _, w in items}) == len(items), "one item written twice in a transaction"
        lost = {
            i: self.markers[(ref.key, ref.version_tag)]
            for i, (ref, _) in enumerate(commits)
            if (ref.key, ref.version_tag) in self.markers
        }
        stale = {i for i, (table, w) in enumerate(items) if not table._newer(w.state)}
        if lost or stale:
            return lost, stale
        for ref, counters in commits:
            self.markers[(ref.key, ref.version_tag)] = counters.get("received", 0)
            self.counters.update(counters)
        for table in {id(t): t for t, _ in items}.values():
            whole = [w.state for t, w in items if t is table and w.whole]
            updates = [w.state for t, w in items if t is table and not w.whole]
            if whole:
                table.put_many(whole)
            if updates:
                table.update_many(updates)
        return {}, set()

    def count_duplicate(self, ref: ObjectRef, records: int, now: datetime) -> None:
        self.counters.update({"duplicate_objects": 1, "duplicate_records": records})


class FakeDeployments:
    def __init__(self) -> None:
        self.reports: list[Any] = []

    def __call__(self, reports: list[Any]) -> dict[str, int]:
        self.reports.extend(reports)
        illegal = sum(1 for r in reports if r.ota.status == "RECEIVED")
        return {"ota_transitions_applied": len(reports) - illegal, "ota_illegal_transitions": illegal}


PROVISIONED = range(100)  # fake_ports() registers vin(0) .. vin(99), as record() describes them
_KEYS: dict[int, ec.EllipticCurvePrivateKey] = {}


def vehicle_key(n: int) -> ec.EllipticCurvePrivateKey:
    """Vehicle ``n``'s own signing key (one per test session)."""
    if n not in _KEYS:
        _KEYS[n] = ec.generate_private_key(ec.SECP256R1())
    return _KEYS[n]


def registered(n: int, **changes: Any) -> RegisteredVehicle:
    values: dict[str, Any] = {
        "vin": vin(n),
        "make": "Tesla",
        "model": "Model 3",
        "model_year": 2023,
        "hw_rev": "HW3",
        "region": "us-west",
        "public_key_pem": public_key_pem(vehicle_key(n)),
        "provisioned_at": NOW - timedelta(days=30),
    }
    values.update(changes)
    return RegisteredVehicle(**values)


def signed(body: dict[str, Any], key: ec.EllipticCurvePrivateKey | None = None) -> dict[str, Any]:
    """``body`` (from :func:`record`) with its OTA report signed by ``key`` (default: its own vehicle's)."""
    ota = dict(body["ota"])
    ts = datetime.fromisoformat(body["ts"].replace("Z", "+00:00"))
    payload = canonical_report(
        body["vin"],
        ts,
        body["firmware_version"],
        ota["campaign_id"],
        ota["deployment_id"],
        ota.get("attempt", 1),
        ota["status"],
        ota["target_version"],
        ota.get("error_code"),
    )
    if key is None:
        key = vehicle_key(next(n for n in PROVISIONED if vin(n) == body["vin"]))
    ota["signature"] = sign_payload(key, payload)
    return {**body, "ota": ota}


class FakeRegistry:
    def __init__(self, vehicles: list[RegisteredVehicle] | None = None) -> None:
        self.vehicles = {v.vin: v for v in vehicles or []}
        self.calls: list[set[str]] = []

    def get_many(self, vins: Any) -> dict[str, RegisteredVehicle]:
        asked = set(vins)
        self.calls.append(asked)
        return {v: self.vehicles[v] for v in asked if v in self.vehicles}

    def refresh_many(self, vins: Any) -> dict[str, RegisteredVehicle]:
        return self.get_many(vins)


class FakeChangeFeed:
    """The registry change feed in memory: ``record`` as a registry writer does, ``read`` counted."""

    def __init__(self, max_changes: int = 4_000) -> None:
        self.changes = RegistryChanges()
        self.max_changes = max_changes
        self.reads = 0

    def record(self, vins: Any, at: datetime = NOW) -> None:
        self.changes = self.changes.with_changes(vins, int(at.timestamp() * 1000), self.max_changes)

    def read(self) -> RegistryChanges:
        self.reads += 1
        return self.changes


def fake_ports() -> IngestPorts:
    return IngestPorts(
        FakeObjects(),
        FakeQuarantine(),
        FakeVehicles(),
        FakeLedger(),
        FakeDeployments(),
        FakeRegistry([registered(n) for n in PROVISIONED]),
    )
