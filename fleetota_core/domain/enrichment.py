"""What the platform derives from a vehicle's newest reading, and when that is worth a write.

Pure: the ingest service hands in a reading (a ``TelemetryRecord`` or anything with the same
attributes, such as the hot path's decoded struct) and the stored state it read back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fleetota_core.domain.firmware import SemVer
from fleetota_core.domain.geography import UNKNOWN_REGION, distance_km, nearest_metro
from fleetota_core.domain.telemetry import NetworkType
from fleetota_core.domain.vehicle import battery_category
from fleetota_core.domain.vehicle_health import HealthReading
from fleetota_core.domain.vin import MAKE_BY_WMI, model_years

if TYPE_CHECKING:
    from collections.abc import Iterable

# A vehicle whose newest reading is older than this counts as offline, whatever it last reported.
# "Last seen" comes from the fleet snapshot, which gets every newer reading through the processor's
# per-invocation delta; the vehicles table only gets material changes (issue #16).
OFFLINE_AFTER = timedelta(minutes=5)
# A stored state dated after the processor's clock plus this cannot come from this code (see
# ``enrich``): it was written before readings were bounded, and it yields to any reading.
CLOCK_TOLERANCE = timedelta(seconds=1)
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
        self._behind: dict[tuple[str, str, str], bool] = {}

    def newest_compatible(self, model: str, hw_rev: str) -> str | None:
        key = (model, hw_rev)
        if key not in self._newest:
            self._newest[key] = next((r.version for r in self.releases if r.fits(model, hw_rev)), None)
        return self._newest[key]

    def needs_update(self, model: str, hw_rev: str, firmware_version: str) -> bool:
        key = (model, hw_rev, firmware_version)
        behind = self._behind.get(key)
        if behind is None:
            newest = self.newest_compatible(model, hw_rev)
            behind = newest is not None and version_key(newest) > version_key(firmware_version)
            self._behind[key] = behind
        return behind


@lru_cache(maxsize=65_536)
def _place(lat_cell: float, lon_cell: float) -> tuple[str, str | None, str]:
    metro = nearest_metro(lat_cell, lon_cell)
    if metro is None:
        return UNKNOWN_REGION, None, "UTC"
    return metro.region, metro.name, metro.timezone


def place_of(lat: float, lon: float) -> tuple[str, str | None, str]:
    """(region, metro, time zone) of a position, cached on a 0.05 degree grid.

    Metros are 150 km in radius, so the grid (about 5 km) only matters within a few km of that edge,
    and the cache makes this a dictionary lookup on the hot path.
    """
    return _place(round(lat * 20) / 20, round(lon * 20) / 20)


@lru_cache(maxsize=4096)
def _identity(wmi: str, year_code: str, this_year: int) -> tuple[str, int]:
    early, late = model_years(year_code)
    return MAKE_BY_WMI.get(wmi, "unknown"), late if late <= this_year + 1 else early


def identity_from_vin(vin: str, now: datetime) -> tuple[str, int]:
    """Make and model year read from the VIN (WMI and position 10)."""
    return _identity(vin[:3], vin[9], now.year)


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
    health: HealthReading | None = None  # the vehicle's cumulative counters (domain/vehicle_health.py)

    @property
    def last_ts_ms(self) -> int:
        return epoch_ms(self.last_ts)


def enrich(reading: Any, catalog: ReleaseCatalog, now: datetime) -> VehicleState:
    """Derive region, battery category, online and ``needs_update`` from a vehicle's newest reading.

    ``last_ts`` is the reading's time, but never after ``now``: a reading up to MAX_FUTURE_SKEW
    ahead (a fast clock) is stored as seen now (to the millisecond, as stored), so it cannot hold
    back the readings after it.
    """
    position, battery, network = reading.position, reading.battery, reading.connectivity.network
    region, metro, tz = place_of(position.lat, position.lon)
    make, model_year = identity_from_vin(reading.vin, now)
    ota = reading.ota
    # Positional: this runs once per vehicle per object, so keyword overhead shows on the hot path.
    return VehicleState(
        reading.vin,
        make,
        reading.model,
        model_year,
        reading.hw_rev,
        reading.firmware_version,
        reading.ts if reading.ts <= now else now.replace(microsecond=now.microsecond // 1000 * 1000),
        reading.seq,
        position.lat,
        position.lon,
        position.speed_kph,
        battery.soc_pct,
        battery_category(battery.soc_pct).value,
        battery.charging,
        reading.drive_state.value,
        network.value,
        reading.connectivity.signal_dbm,
        reading.odometer_km,
        network is not NetworkType.NONE and now - reading.ts <= OFFLINE_AFTER,
        region,
        metro,
        tz,
        catalog.needs_update(reading.model, reading.hw_rev, reading.firmware_version),
        catalog.newest_compatible(reading.model, reading.hw_rev),
        None if ota is None else ota.status.value,
        None if ota is None else ota.campaign_id,
        None if reading.health is None else HealthReading.of(reading.health),
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
    ota_status: str | None = None
    ota_campaign_id: str | None = None
    health_events: int | None = None

    @classmethod
    def of(cls, state: VehicleState) -> StoredState:
        """What the table holds right after ``state`` was written."""
        return cls(
            state.last_ts_ms,
            state.last_seq,
            state.drive_state,
            state.online,
            state.firmware_version,
            state.battery_category,
            state.charging,
            state.needs_update,
            state.region,
            state.lat,
            state.lon,
            state.ota_status,
            state.ota_campaign_id,
            None if state.health is None else state.health.events,
        )


def not_after_ms(now: datetime) -> int:
    """The latest ``last_ts_ms`` a stored state may hold at ``now``; a later one yields to any reading."""
    return epoch_ms(now + CLOCK_TOLERANCE)


def is_newer(reading: Any, stored: StoredState | None, now: datetime) -> bool:
    """Whether ``reading`` is after the stored one in (ts, seq) order, or the stored one is dated in
    the future (left from before readings were bounded), which never blocks a reading."""
    if stored is None or stored.last_ts_ms > not_after_ms(now):
        return True
    return (epoch_ms(reading.ts), reading.seq) > (stored.last_ts_ms, stored.last_seq)


def health_events(reading: Any) -> int | None:
    """Fault codes, reboots and link drops the reading counts, or None if it carries no counters."""
    health = reading.health
    return None if health is None else health.dtc_count + health.reboots + health.link_drops


def is_material(reading: Any, stored: StoredState | None, now: datetime) -> bool:
    """Whether writing ``reading`` over ``stored`` tells an operator something new.

    A vehicle never seen, an OTA report, or a change of drive state, online, firmware, battery category
    or charging, a new fault code, reboot or link drop (the health gate counts them), or more than 1 km
    of movement. Region and ``needs_update`` follow from position and firmware, so the check needs no
    enrichment. Time alone is not material: "last seen" travels in the fleet snapshot's deltas, not in
    the vehicles table (issue #16).
    """
    if stored is None or reading.ota is not None:
        return True
    # Only past a stored state dated in the future (see is_newer): replace it at once.
    if epoch_ms(reading.ts) < stored.last_ts_ms:
        return True
    network = reading.connectivity.network
    battery, position = reading.battery, reading.position
    # Positional: once per vehicle per object on the processor's path.
    return material_change(
        stored,
        reading.drive_state.value,
        network is not NetworkType.NONE and now - reading.ts <= OFFLINE_AFTER,
        reading.firmware_version,
        battery_category(battery.soc_pct).value,
        battery.charging,
        health_events(reading),
        position.lat,
        position.lon,
    )


def material_change(
    before: StoredState | MaterialFacts,
    drive_state: str,
    online: bool,
    firmware_version: str,
    category: str,
    charging: bool,
    events: int | None,
    lat: float,
    lon: float,
) -> bool:
    """The rule of :func:`is_material` on plain values: whether they differ materially from ``before``.

    The processor applies it to a reading against the stored state; a vehicle that reports by
    exception applies it to its own reading against the facts of the last change it reported
    (``MaterialFacts``; the record's ``changed``, see docs/telemetry.md).
    """
    if (
        before.drive_state != drive_state
        or before.online != online
        or before.firmware_version != firmware_version
        or before.battery_category != category
        or before.charging != charging
        or before.lat is None
        or before.lon is None
        or before.health_events != events
    ):
        return True
    return distance_km(before.lat, before.lon, lat, lon) > MATERIAL_DISTANCE_KM


@dataclass(frozen=True, slots=True)
class MaterialFacts:
    """What a reading says that the material-change rule compares, as a vehicle knows it when it reads.

    ``online``: the vehicle has a network (a reading is fresh where it is taken).
    """

    drive_state: str
    online: bool
    firmware_version: str
    battery_category: str
    charging: bool
    health_events: int | None
    lat: float
    lon: float

    def differs_from(self, before: MaterialFacts | StoredState) -> bool:
        """Whether these facts are a material change from ``before`` (:func:`material_change`)."""
        return material_change(
            before,
            self.drive_state,
            self.online,
            self.firmware_version,
            self.battery_category,
            self.charging,
            self.health_events,
            self.lat,
            self.lon,
        )
