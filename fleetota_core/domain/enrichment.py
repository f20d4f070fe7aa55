"""What the platform derives from a vehicle's newest reading, and when that is worth a write.

Pure: the ingest service hands in a reading (a ``TelemetryRecord`` or anything with the same
attributes, such as the hot path's decoded struct) and the stored state it read back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fleetota_core.domain.firmware import SemVer
from fleetota_core.domain.geography import UNKNOWN_REGION, distance_km, nearest_metro
from fleetota_core.domain.vehicle import battery_category
from fleetota_core.domain.vin import MAKE_BY_WMI, model_years

if TYPE_CHECKING:
    from collections.abc import Iterable

# A stored state older than this is rewritten even when nothing material changed, so "last seen"
# stays honest without a write per reading.
HEARTBEAT = timedelta(minutes=5)
# A vehicle whose newest reading is older than this counts as offline, whatever it last reported.
OFFLINE_AFTER = timedelta(minutes=5)
# Movement below this is not material: positions drift and the map does not need metre precision.
MATERIAL_DISTANCE_KM = 1.0


@lru_cache(maxsize=4096)
def version_key(version: str) -> SemVer:
    """Semver ordering (a pre-release sorts before its release); cached, versions repeat endlessly."""
    return SemVer(version)


@dataclass(frozen=True)
class ReleaseSummary:
    """The part of a firmware release that decides whether a vehicle is behind."""

    version: str
    models: frozenset[str]
    hw_revs: frozenset[str]

    def fits(self, model: str, hw_rev: str) -> bool:
        # An empty set means "any", as in a manifest that names no restriction.
        return (not self.models or model in self.models) and (not self.hw_revs or hw_rev in self.hw_revs)


class ReleaseCatalog:
    """The newest compatible release per (model, hardware revision), memoised per catalog."""

    def __init__(self, releases: Iterable[ReleaseSummary] = ()) -> None:
        self.releases = tuple(sorted(releases, key=lambda r: version_key(r.version), reverse=True))
        self._newest: dict[tuple[str, str], str | None] = {}

    def newest_compatible(self, model: str, hw_rev: str) -> str | None:
        key = (model, hw_rev)
        if key not in self._newest:
            self._newest[key] = next((r.version for r in self.releases if r.fits(model, hw_rev)), None)
        return self._newest[key]

    def needs_update(self, model: str, hw_rev: str, firmware_version: str) -> bool:
        newest = self.newest_compatible(model, hw_rev)
        return newest is not None and version_key(newest) > version_key(firmware_version)


@lru_cache(maxsize=65_536)
def _place(lat_cell: float, lon_cell: float) -> tuple[str, str | None, str]:
    metro = nearest_metro(lat_cell, lon_cell)
    if metro is None:
        return UNKNOWN_REGION, None, "UTC"
    return metro.region, metro.name, metro.timezone


def place_of(lat: float, lon: float) -> tuple[str, str | None, str]:
    """(region, metro, time zone) of a position, cached on a ~1 km grid (metros are ~150 km wide)."""
    return _place(round(lat, 2), round(lon, 2))


def identity_from_vin(vin: str, now: datetime) -> tuple[str, int]:
    """Make and model year read from the VIN (WMI and position 10)."""
    make = MAKE_BY_WMI.get(vin[:3], "unknown")
    early, late = model_years(vin[9])
    return make, late if late <= now.year + 1 else early


def epoch_ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class VehicleState:
    """The latest state of one vehicle as the vehicles table stores it (see ``Vehicle``)."""

    vin: str
    make: str
    model: str
    model_year: int
    hw_rev: str
    firmware_version: str
    last_ts: datetime
    last_seq: int
    lat: float
    lon: float
    speed_kph: float
    soc_pct: float
    battery_category: str
    charging: bool
    drive_state: str
    network: str
    signal_dbm: int | None
    odometer_km: float
    online: bool
    region: str
    metro: str | None
    timezone: str
    needs_update: bool
    newest_compatible: str | None
    ota_status: str | None
    ota_campaign_id: str | None

    @property
    def last_ts_ms(self) -> int:
        return epoch_ms(self.last_ts)


def enrich(reading: Any, catalog: ReleaseCatalog, now: datetime) -> VehicleState:
    """Derive region, battery category, online and ``needs_update`` from a vehicle's newest reading."""
    region, metro, tz = place_of(reading.position.lat, reading.position.lon)
    make, model_year = identity_from_vin(reading.vin, now)
    ota = reading.ota
    return VehicleState(
        vin=reading.vin,
        make=make,
        model=reading.model,
        model_year=model_year,
        hw_rev=reading.hw_rev,
        firmware_version=reading.firmware_version,
        last_ts=reading.ts.astimezone(UTC),
        last_seq=reading.seq,
        lat=reading.position.lat,
        lon=reading.position.lon,
        speed_kph=reading.position.speed_kph,
        soc_pct=reading.battery.soc_pct,
        battery_category=str(battery_category(reading.battery.soc_pct)),
        charging=reading.battery.charging,
        drive_state=str(reading.drive_state),
        network=str(reading.connectivity.network),
        signal_dbm=reading.connectivity.signal_dbm,
        odometer_km=reading.odometer_km,
        online=str(reading.connectivity.network) != "NONE" and now - reading.ts <= OFFLINE_AFTER,
        region=region,
        metro=metro,
        timezone=tz,
        needs_update=catalog.needs_update(reading.model, reading.hw_rev, reading.firmware_version),
        newest_compatible=catalog.newest_compatible(reading.model, reading.hw_rev),
        ota_status=None if ota is None else str(ota.status),
        ota_campaign_id=None if ota is None else ota.campaign_id,
    )


@dataclass(frozen=True, slots=True)
class StoredState:
    """The attributes of a stored vehicle that decide whether a new reading is material."""

    last_ts_ms: int
    last_seq: int
    drive_state: str | None = None
    online: bool | None = None
    firmware_version: str | None = None
    battery_category: str | None = None
    charging: bool | None = None
    needs_update: bool | None = None
    region: str | None = None
    lat: float | None = None
    lon: float | None = None


def is_newer(state: VehicleState, stored: StoredState | None) -> bool:
    """Whether ``state`` is after the stored reading in (ts, seq) order."""
    if stored is None:
        return True
    return (state.last_ts_ms, state.last_seq) > (stored.last_ts_ms, stored.last_seq)


def is_material(state: VehicleState, stored: StoredState | None) -> bool:
    """Whether writing ``state`` over ``stored`` tells an operator something new.

    A vehicle never seen, a changed drive state, connectivity, firmware, battery category, charging,
    ``needs_update`` or region, more than 1 km of movement, an OTA report, or a stored state older
    than the heartbeat all count.
    """
    if stored is None or state.ota_status is not None:
        return True
    if state.last_ts_ms - stored.last_ts_ms >= HEARTBEAT.total_seconds() * 1000:
        return True
    changed = (
        stored.drive_state != state.drive_state
        or stored.online != state.online
        or stored.firmware_version != state.firmware_version
        or stored.battery_category != state.battery_category
        or stored.charging != state.charging
        or stored.needs_update != state.needs_update
        or stored.region != state.region
    )
    if changed or stored.lat is None or stored.lon is None:
        return True
    return distance_km(stored.lat, stored.lon, state.lat, state.lon) > MATERIAL_DISTANCE_KM
