"""One simulated vehicle: trips between sites, battery, pack temperature and connectivity.

Time is epoch seconds. :meth:`SimVehicle.advance` runs the vehicle event by event (depart, arrive,
charge) up to a reading time, so readings agree with each other at any interval.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from fleetota_core.domain.telemetry import NetworkType
from simulator.behaviour import plan_next
from simulator.environment import coverage
from simulator.health import HealthMonitor
from simulator.sites import Site, SiteKind

if TYPE_CHECKING:
    import random

    from fleetota_core.domain.enrichment import MaterialFacts
    from fleetota_core.domain.geography import Metro
    from simulator.environment import Conditions
    from simulator.sites import ZoneSites

KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON_EQUATOR = 111.320
_AC_MAX_KW = 11.0
_CHARGE_EFFICIENCY = 0.92
_THERMAL_TAU_S = 1_500.0
_OFF_PEAK_START, _OFF_PEAK_END = 22 * 3600, 7 * 3600
_COVERAGE_GAP = 0.03  # share of ~1 km cells with no cellular coverage at all
_NR_CELLS = 0.55  # share of cells with 5G


class Role(StrEnum):
    COMMUTER = "commuter"  # home, work, the odd errand; charges at home at night
    FLEET = "fleet"  # depot-based service vehicle: several stops a day, charges at the depot


class SimVehicle:
    """Identity (fixed at fleet generation) plus the state the physics advances."""

    __slots__ = (
        "battery_kwh", "charging", "depart_at", "dest", "driving", "firmware_version", "heading",
        "health", "hold_parked", "home", "home_wifi", "hw_rev", "kx", "lat", "lon", "low_soc", "make",
        "max_dc_kw", "metro", "model", "model_year", "modem", "network", "next_dest", "odometer_km",
        "ota_state", "outage_until", "outbox", "pack_voltage", "phase", "plug_below", "reported",
        "reported_at", "role", "seq", "signal_dbm", "signing_key", "site", "soc", "speed_kph", "t",
        "temp_c", "trip_speed", "vin", "wh_per_km", "work", "zone",
    )  # fmt: skip

    def __init__(
        self,
        *,
        vin: str,
        make: str,
        model: str,
        model_year: int,
        hw_rev: str,
        modem: str,
        battery_kwh: float,
        wh_per_km: float,
        pack_voltage: float,
        max_dc_kw: float,
        firmware_version: str,
        metro: Metro,
        zone: ZoneSites,
        role: Role,
        home: Site,
        work: Site | None,
        home_wifi: bool,
        low_soc: float,
        plug_below: float,
        soc: float,
        odometer_km: float,
        phase: float,
    ) -> None:
        self.vin, self.make, self.model, self.model_year = vin, make, model, model_year
        self.hw_rev, self.modem, self.firmware_version = hw_rev, modem, firmware_version
        self.battery_kwh, self.wh_per_km = battery_kwh, wh_per_km
        self.pack_voltage, self.max_dc_kw = pack_voltage, max_dc_kw
        self.metro, self.zone, self.role = metro, zone, role
        self.home, self.work, self.home_wifi, self.low_soc = home, work, home_wifi, low_soc
        self.plug_below = plug_below  # some owners only plug in at home when the battery gets low
        self.kx = KM_PER_DEG_LON_EQUATOR * math.cos(math.radians(metro.lat))
        self.phase = phase  # where in each interval this vehicle reads, as a fraction of it
        self.soc, self.odometer_km = soc, odometer_km
        self.temp_c = 15.0
        self.site: Site | None = home
        self.lat, self.lon = home.lat, home.lon
        self.heading, self.speed_kph, self.driving = 0.0, 0.0, False
        self.dest: Site | None = None
        self.next_dest: Site = home
        self.depart_at = math.inf
        self.trip_speed = 0.0
        self.charging = False
        self.hold_parked = False
        self.t = 0.0
        self.seq = 0
        self.outbox: list[str] = []  # readings held while offline (store and forward)
        self.outage_until = 0.0
        self.network, self.signal_dbm = NetworkType.NONE, None
        self.ota_state: object = None  # owned by the OTA client (simulator/ota_client.py)
        self.signing_key: Any = None  # its own ECDSA P-256 key (simulator/vehicle_keys.py)
        self.health = HealthMonitor(vin)  # counters since provisioning (simulator/health.py)
        # The last change it reported and when (simulator/change_hint.py); none yet since this start.
        self.reported: MaterialFacts | None = None
        self.reported_at = 0.0

    # --- placement -----------------------------------------------------------------------------
    def start(self, t: float, site: Site, cond: Conditions, rng: random.Random) -> None:
        """Park at ``site`` at time ``t`` and plan the first trip."""
        self.t = t
        self.temp_c = cond.ambient_c
        self._arrive(site, t, cond, rng)

    def distance_km(self, lat: float, lon: float) -> float:
        return math.hypot((lat - self.lat) * KM_PER_DEG_LAT, (lon - self.lon) * self.kx)

    # --- physics -------------------------------------------------------------------------------
    def advance(self, t_to: float, cond: Conditions, rng: random.Random) -> None:
        """Run the vehicle from its current time to ``t_to``."""
        t = self.t
        traffic = rng.uniform(0.8, 1.12)  # this interval's traffic, the same for the whole interval
        while t < t_to:
            if self.driving:
                t = self._drive(t, t_to, traffic, cond, rng)
            elif self.depart_at <= t and not self.hold_parked:
                self._depart(t)
            else:
                until = t_to if self.hold_parked else min(t_to, self.depart_at)
                self._park(t, until, cond)
                t = until
        self.t = t_to
        self.speed_kph = round(self.trip_speed * traffic, 1) if self.driving else 0.0

    def _drive(self, t: float, t_to: float, traffic: float, cond: Conditions, rng: random.Random) -> float:
        dest = self.dest
        assert dest is not None
        speed = self.trip_speed * traffic
        remaining = self.distance_km(dest.lat, dest.lon)
        arrive_in = remaining / speed * 3600.0
        dt = min(t_to - t, arrive_in)
        step = speed * dt / 3600.0
        if dt >= arrive_in:
            self.lat, self.lon = dest.lat, dest.lon
        else:
            f = step / remaining
            self.lat += (dest.lat - self.lat) * f
            self.lon += (dest.lon - self.lon) * f
        self.odometer_km += step
        # Cold packs and high speed cost energy; the catalogue figure is a mild-weather mixed cycle.
        factor = 0.95 + 0.012 * max(0.0, 18.0 - cond.ambient_c) + 0.25 * (speed / 100.0) ** 2
        self.soc = max(0.5, self.soc - step * self.wh_per_km * factor / 10.0 / self.battery_kwh)
        self._relax_temp(max(cond.ambient_c + 6.0, 18.0), dt)
        if dt >= arrive_in:
            self._arrive(dest, t + dt, cond, rng)
        return t + dt

    def _depart(self, t: float) -> None:
        dest = self.next_dest
        self.driving, self.charging, self.site, self.dest = True, False, None, dest
        dy = (dest.lat - self.lat) * KM_PER_DEG_LAT
        dx = (dest.lon - self.lon) * self.kx
        self.heading = math.degrees(math.atan2(dx, dy)) % 360.0
        distance = math.hypot(dx, dy)
        # Short hops are city streets, longer trips use arterials and freeways.
        self.trip_speed = min(95.0, max(24.0, 18.0 + 3.2 * distance))
        self.depart_at = math.inf

    def _arrive(self, site: Site, t: float, cond: Conditions, rng: random.Random) -> None:
        self.driving, self.dest, self.site = False, None, site
        self.lat, self.lon = site.lat, site.lon
        self.depart_at, self.next_dest = plan_next(self, t, cond, rng)

    def _park(self, t: float, until: float, cond: Conditions) -> None:
        dt = until - t
        kw = self._charge_power(t, cond)
        self.charging = kw > 0
        if kw > 0:
            target = 90.0 if self.site is not None and self.site.kind is not SiteKind.CHARGER else 80.0
            gained = kw * dt / 3600.0 * _CHARGE_EFFICIENCY / self.battery_kwh * 100.0
            self.soc = min(target, self.soc + gained)
            heat = 4.0 if kw <= _AC_MAX_KW else 10.0 + 12.0 * min(kw, 250.0) / 250.0
            self._relax_temp(max(cond.ambient_c, 10.0) + heat, dt)
        else:
            self._relax_temp(cond.ambient_c, dt)
            self.soc = self.health.parked(self.firmware_version, self.soc, dt)

    def _charge_power(self, t: float, cond: Conditions) -> float:
        site = self.site
        if site is None or site.charger_kw <= 0:
            return 0.0
        if site.kind is SiteKind.CHARGER:
            if self.soc >= 80.0:
                return 0.0
            taper = 1.0 if self.soc < 50.0 else max(0.15, 1.0 - (self.soc - 50.0) / 40.0)
            return min(site.charger_kw, self.max_dc_kw) * taper
        if self.soc >= 90.0:
            return 0.0
        if site.kind is SiteKind.HOME and self.soc >= 30.0:
            if not self.charging and self.soc >= self.plug_below:
                return 0.0
            # Smart charging: wait for the off-peak tariff unless the battery is low.
            local = cond.local_seconds(t)
            if _OFF_PEAK_END <= local < _OFF_PEAK_START:
                return 0.0
        if site.kind is SiteKind.WORK and self.soc >= 70.0:
            return 0.0
        return min(site.charger_kw, _AC_MAX_KW)

    def _relax_temp(self, target: float, dt: float) -> None:
        self.temp_c = target + (self.temp_c - target) * math.exp(-dt / _THERMAL_TAU_S)

    # --- connectivity --------------------------------------------------------------------------
    def sense_network(self, t: float, salt: int, rng: random.Random) -> None:
        """Network type and signal at time ``t``, after :meth:`advance`."""
        site = None if self.driving else self.site
        if t < self.outage_until:
            self.network, self.signal_dbm = NetworkType.NONE, None
        elif site is not None and (site.wifi or (site is self.home and self.home_wifi)):
            self.network, self.signal_dbm = NetworkType.WIFI, rng.randint(-70, -40)
        elif site is not None and site.underground:
            self.network, self.signal_dbm = NetworkType.NONE, None
        else:
            q = coverage(self.lat, self.lon, salt)
            if q < _COVERAGE_GAP:
                self.network, self.signal_dbm = NetworkType.NONE, None
                return
            if self.modem == "3G":
                network = NetworkType.G3
            elif self.modem == "5G" and q < _NR_CELLS:
                network = NetworkType.NR5G
            else:
                network = NetworkType.LTE
            # Signal weakens towards the edge of coverage; the draw adds fading.
            base = -118.0 + 60.0 * ((q * 7.31) % 1.0)
            self.network, self.signal_dbm = network, max(-125, min(-55, int(base) + rng.randint(-4, 4)))

    def start_outage(self, t: float, duration_s: float) -> None:
        """A fault: no connectivity at all until ``t + duration_s`` (dead zone, modem reset)."""
        self.outage_until = t + duration_s

    @property
    def online(self) -> bool:
        return self.network is not NetworkType.NONE

    @property
    def voltage_v(self) -> float:
        sag = -0.03 if self.driving else (0.02 if self.charging else 0.0)
        return self.pack_voltage * (0.86 + 0.26 * self.soc / 100.0 + sag)
