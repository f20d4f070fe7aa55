"""The vehicles table as the campaign use cases read it: identity and latest state, for targeting
and eligibility. Items that are not yet a whole vehicle (no identity) are left out.

With a registry table (as every entry point wires it), identity comes from the registry, never from
what telemetry put in the vehicles table: make, model, model year, hardware revision and region are
the registry's, and a vehicle the registry does not hold as active is not a vehicle to target.

Targeting (``all``) reads the fleet snapshot's rows, not the vehicles table: the snapshot holds every
state the table holds (each write reaches it as a delta, and a sweep heals lost ones) and fresher last
seen. Registration is checked with projected BatchGetItem requests for the snapshot's VINs, in
parallel, instead of a registry scan. Only before the first snapshot does ``all`` scan the table.

The vehicles table holds material changes only (issue #16). "Last seen", position, battery and signal
of a vehicle that keeps reporting without a material change live in the fleet snapshot, which folds
in every newer reading; a ``last_seen`` source overlays them, so eligibility judges a parked car
that reports every 10 s as online, not by its last material change.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from fleetota_core.adapters.aws_errors import reading
from fleetota_core.adapters.dynamo_items import from_item
from fleetota_core.adapters.gc_pause import collector_paused
from fleetota_core.adapters.snapshot_row_check import is_plain_vehicle
from fleetota_core.adapters.vehicle_registry import VehicleRegistry
from fleetota_core.domain.enrichment import epoch_ms
from fleetota_core.domain.enrolment import Candidate
from fleetota_core.domain.geography import METRO_BY_NAME
from fleetota_core.domain.vehicle import Vehicle
from fleetota_core.domain.vehicle_health import ATTRIBUTES as HEALTH_ATTRIBUTES

if TYPE_CHECKING:
    from fleetota_core.domain.vehicle_identity import RegisteredIdentity, RegisteredVehicle

# VIN -> the fleet snapshot's row for it (``fleetota_core.adapters.fleet_snapshot.Row``).
LastSeen = Callable[[], Mapping[str, Mapping[str, Any]]]
# The same rows for targeting, or None when there is no snapshot yet (before the first tick).
FleetRows = Callable[[], Mapping[str, Mapping[str, Any]] | None]
# What a newer snapshot row replaces: the reading's values, never identity (the registry's).
_SEEN_COLUMNS = (
    "firmware_version",
    "lat",
    "lon",
    "speed_kph",
    "soc_pct",
    "charging",
    "drive_state",
    "network",
    "signal_dbm",
    "odometer_km",
    "online",
    *HEALTH_ATTRIBUTES,
)


def vehicle_from_item(item: dict[str, Any] | None) -> Vehicle | None:
    if not item:
        return None
    try:
        return Vehicle.model_validate(item)
    except ValidationError:
        return None


def vehicle_from_row(vin: str, row: Mapping[str, Any]) -> Vehicle | None:
    """A snapshot row as a vehicle (time zone from its metro), or None for a row that is not one."""
    values = {c: v for c, v in row.items() if v is not None}
    name = values.get("metro")
    metro = METRO_BY_NAME.get(name) if isinstance(name, str) else None  # a row is data: any JSON value
    values["vin"] = vin
    values["timezone"] = metro.timezone if metro else "UTC"
    return vehicle_from_item(values)


def candidate_from_row(vin: str, row: Mapping[str, Any]) -> Candidate | None:
    """What creation targets of a snapshot row: the same rows as :func:`vehicle_from_row`, the same
    values, without building a ``Vehicle`` for a row of the snapshot's own shape."""
    if is_plain_vehicle(vin, row):
        region = row["region"]
        return Candidate(vin, row["model"], row["hw_rev"], "unknown" if region is None else region,
                         row["firmware_version"])  # fmt: skip
    vehicle = vehicle_from_row(vin, row)
    return None if vehicle is None else candidate(vehicle)


def candidate(vehicle: Vehicle) -> Candidate:
    return Candidate(vehicle.vin, vehicle.model, vehicle.hw_rev, vehicle.region, vehicle.firmware_version)


def with_registered_identity(vehicle: Vehicle, registered: RegisteredVehicle | RegisteredIdentity) -> Vehicle:
    same = (vehicle.make, vehicle.model, vehicle.model_year, vehicle.hw_rev, vehicle.region) == (
        registered.make,
        registered.model,
        registered.model_year,
        registered.hw_rev,
        registered.region,
    )
    if same:
        return vehicle  # the common case, a million times per targeting read
    return vehicle.model_copy(
        update={
            "make": registered.make,
            "model": registered.model,
            "model_year": registered.model_year,
            "hw_rev": registered.hw_rev,
            "region": registered.region,
        }
    )


def with_last_seen(vehicle: Vehicle, row: Mapping[str, Any] | None) -> Vehicle:
    """``vehicle`` with the snapshot row's reading if that reading is newer than the stored one."""
    ts_ms, seq = (row or {}).get("last_ts_ms"), (row or {}).get("last_seq")
    if row is None or type(ts_ms) is not int or type(seq) is not int:
        return vehicle
    stored = (epoch_ms(vehicle.last_ts), vehicle.last_seq) if vehicle.last_ts else None
    if stored is not None and (ts_ms, seq) <= stored:
        return vehicle
    seen = {c: row[c] for c in _SEEN_COLUMNS if row.get(c) is not None}
    updated = {
        **vehicle.model_dump(),
        **seen,
        "last_ts": datetime.fromtimestamp(ts_ms / 1000, UTC),
        "last_seq": seq,
    }
    try:
        return Vehicle.model_validate(updated)
    except ValidationError:
        return vehicle  # a row this version cannot read: the stored state stands


# Below this many snapshot rows targeting scans the vehicles table (a few pages) instead of reading
# the snapshot, so a new fleet's vehicles are targetable at once rather than a minute later.
SMALL_FLEET_ROWS = 5_000


class VehicleDirectory:
    def __init__(
        self,
        dynamodb: Any,
        table: str,
        registry_table: str | None = None,
        last_seen: LastSeen | None = None,
        fleet: FleetRows | None = None,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.registry = VehicleRegistry(dynamodb, registry_table) if registry_table else None
        self.last_seen = last_seen
        self.fleet = fleet

    def _seen(self, vehicles: dict[str, Vehicle]) -> dict[str, Vehicle]:
        if self.last_seen is None or not vehicles:
            return vehicles
        rows = self.last_seen()
        # A sharded snapshot looks a page's vehicles up shard by shard (each shard read once).
        lookup = getattr(rows, "lookup", None)
        found = lookup(list(vehicles)) if lookup is not None else rows
        return {vin: with_last_seen(v, found.get(vin)) for vin, v in vehicles.items()}

    def _registered(
        self, vehicles: dict[str, Vehicle], known: Mapping[str, RegisteredVehicle | RegisteredIdentity]
    ) -> dict[str, Vehicle]:
        return {
            vin: with_registered_identity(v, known[vin])
            for vin, v in vehicles.items()
            if vin in known and known[vin].active
        }

    def get_many(self, vins: list[str]) -> dict[str, Vehicle]:
        out: dict[str, Vehicle] = {}
        for start in range(0, len(vins), 100):
            request = {self.table: {"Keys": [{"vin": {"S": vin}} for vin in vins[start : start + 100]]}}
            while request:
                with reading(f"table {self.table}"):
                    response = self.dynamodb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    vehicle = vehicle_from_item(from_item(item))
                    if vehicle is not None:
                        out[vehicle.vin] = vehicle
                request = response.get("UnprocessedKeys") or {}
        out = self._seen(out)
        if self.registry is None:
            return out
        return self._registered(out, self.registry.get_many(list(out)))

    def all(self) -> list[Vehicle]:
        """Targeting read: the whole fleet, once per campaign creation or preview (the snapshot)."""
        rows = self.fleet() if self.fleet is not None else None
        if rows is None or len(rows) < SMALL_FLEET_ROWS:
            # No snapshot yet, or a small fleet: its table is a few pages, and it holds the vehicles
            # of the last minute that the snapshot takes in only once their deltas have settled.
            return self._scanned()
        with collector_paused():  # a million vehicles and registrations, no cycles among them
            return self._vehicles(rows)

    def _vehicles(self, rows: Mapping[str, Mapping[str, Any]]) -> list[Vehicle]:
        out: dict[str, Vehicle] = {}

        def checked() -> Iterator[str]:
            for vin, row in rows.items():
                if (v := vehicle_from_row(vin, row)) is not None:
                    out[vin] = v
                    yield vin

        if self.registry is None:
            collections.deque(checked(), maxlen=0)
            return list(out.values())
        known = self.registry.identities(checked())  # the registry answers while rows are checked
        return list(self._registered(out, known).values())

    def candidates(self) -> list[Candidate]:
        """What :meth:`all` reads, as creation targets it: the same vehicles, identity and version."""
        rows = self.fleet() if self.fleet is not None else None
        if rows is None or len(rows) < SMALL_FLEET_ROWS:
            return [candidate(v) for v in self._scanned()]
        with collector_paused():  # a million candidates and registrations, no cycles among them
            return self._candidates(rows)

    def _candidates(self, rows: Mapping[str, Mapping[str, Any]]) -> list[Candidate]:
        out: dict[str, Candidate] = {}

        def checked() -> Iterator[str]:
            for vin, row in rows.items():
                if (c := candidate_from_row(vin, row)) is not None:
                    out[vin] = c
                    yield vin

        if self.registry is None:
            collections.deque(checked(), maxlen=0)
            return list(out.values())
        known = self.registry.identities(checked())  # the registry answers while rows are checked
        return [
            # The registry's identity; the row's candidate as it is where they agree (nearly all).
            c if k.model == c.model and k.hw_rev == c.hw_rev and k.region == c.region
            else Candidate(vin, k.model, k.hw_rev, k.region, c.firmware_version)
            for vin, c in out.items()
            if (k := known.get(vin)) is not None and k.active
        ]  # fmt: skip

    def _scanned(self) -> list[Vehicle]:
        # Before the first snapshot (a stack that has never ticked): the table, as before issue #16.
        out: dict[str, Vehicle] = {}
        with reading(f"table {self.table}"):
            for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.table):
                vehicles = (vehicle_from_item(from_item(i)) for i in page.get("Items", []))
                out.update((v.vin, v) for v in vehicles if v is not None)
        out = self._seen(out)
        if self.registry is None:
            return list(out.values())
        known = {v.vin: v for v in self.registry.all()}
        return list(self._registered(out, known).values())
