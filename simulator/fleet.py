"""Fleet generation: unique valid VINs, a realistic model mix and homes in several metros."""

from __future__ import annotations

import json
import os
import random
from typing import TYPE_CHECKING, TypeVar

from fleetota_core.domain.geography import LAND_ZONES, METRO_BY_NAME
from fleetota_core.domain.vin import with_check_digit, year_code
from simulator.catalogue import CATALOGUE, FIRMWARE_SPREAD, METRO_SHARES, VehicleModel, hw_revs_for
from simulator.sites import Site, SiteKind, ZoneSites, build_zone_sites, random_point
from simulator.vehicle import Role, SimVehicle
from simulator.vehicle_keys import fleet_private_keys

if TYPE_CHECKING:
    from pathlib import Path

T = TypeVar("T")
# VIN characters outside the check digit and year code: I, O and Q are never used.
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
# Position 11, the assembly plant, per make (a few real plant letters each).
_PLANTS = {
    "Tesla": "FAB",
    "Ford": "MC",
    "Hyundai": "UH",
    "Volkswagen": "CP",
    "BMW": "BN",
    "Kia": "UH",
    "Volvo": "GJ",
    "Rivian": "NL",
    "Polestar": "DH",
    "Nissan": "CN",
}
MODEL_YEARS = (2019, 2026)
FLEET_SHARE = 0.3  # depot-based vehicles in a mixed fleet; the rest are commuters


class VinFactory:
    """Builds VINs that pass any decoder; a per-prefix serial counter keeps them unique."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._serials: dict[str, int] = {}
        self.issued: set[str] = set()

    def make(self, model: VehicleModel, model_year: int) -> str:
        rng = self.rng
        restraint_and_trim = "".join(rng.choice(VIN_CHARS) for _ in range(3))
        plant = rng.choice(_PLANTS.get(model.make, "A"))
        prefix = f"{model.wmi}{model.vds}{restraint_and_trim}0{year_code(model_year)}{plant}"
        # Serials restart per WMI, year and plant, as makers number them.
        counter_key = prefix[:3] + prefix[9:11]
        serial = self._serials.get(counter_key, rng.randint(10_000, 200_000)) + rng.randint(1, 40)
        self._serials[counter_key] = serial
        vin = with_check_digit(f"{prefix}{serial:06d}")
        if vin in self.issued:  # impossible by construction; guards a future edit
            raise RuntimeError(f"duplicate VIN generated: {vin}")
        self.issued.add(vin)
        return vin


def _weighted(rng: random.Random, items: list[T], weights: list[float]) -> T:
    return rng.choices(items, weights=weights, k=1)[0]


def _model_year(rng: random.Random, model: VehicleModel) -> int:
    first, last = max(model.years[0], MODEL_YEARS[0]), min(model.years[1], MODEL_YEARS[1])
    years = list(range(first, last + 1))
    # Newer model years are more common: fleets grow over time.
    return _weighted(rng, years, [1.0 + i for i in range(len(years))])


def _firmware(rng: random.Random, model_year: int) -> str:
    versions = [v for v, _ in FIRMWARE_SPREAD]
    weights = [w for _, w in FIRMWARE_SPREAD]
    index = versions.index(_weighted(rng, versions, weights))
    if model_year <= 2021 and rng.random() < 0.4:
        index = min(len(versions) - 1, index + 3)  # older cars make up most of the old tail
    return versions[index]


def build_zones(rng: random.Random) -> dict[str, list[ZoneSites]]:
    """Depots, chargers and stops for every land zone of every metro."""
    return {
        metro: [build_zone_sites(rng, metro, polygon) for polygon in polygons]
        for metro, polygons in LAND_ZONES.items()
    }


def generate_fleet(count: int, seed: int, fleet_share: float = FLEET_SHARE) -> list[SimVehicle]:
    """``count`` vehicles; the same seed gives the same fleet.

    ``fleet_share`` is the share of depot-based fleet vehicles (delivery, service); the rest commute.
    """
    rng = random.Random(seed)
    zones = build_zones(rng)
    vins = VinFactory(rng)
    metros = list(METRO_SHARES)
    models = list(CATALOGUE)
    fleet = []
    for _ in range(count):
        model = _weighted(rng, models, [m.share for m in models])
        model_year = _model_year(rng, model)
        hw = rng.choice(hw_revs_for(model, model_year))
        metro = METRO_BY_NAME[_weighted(rng, metros, list(METRO_SHARES.values()))]
        zone = rng.choice(zones[metro.name])
        role = Role.FLEET if rng.random() < fleet_share else Role.COMMUTER
        if role is Role.FLEET:
            home, work, home_wifi = rng.choice(zone.depots), None, True
        else:
            lat, lon = random_point(rng, zone.polygon)
            charger_kw = rng.choice((7.2, 11.0)) if rng.random() < 0.75 else 0.0
            home = Site(SiteKind.HOME, lat, lon, charger_kw=charger_kw)
            home_wifi = rng.random() < 0.6
            work = None
            if rng.random() < 0.85:
                wlat, wlon = random_point(rng, zone.polygon)
                work = Site(
                    SiteKind.WORK,
                    wlat,
                    wlon,
                    charger_kw=11.0 if rng.random() < 0.2 else 0.0,
                    wifi=rng.random() < 0.1,
                    underground=rng.random() < 0.08,
                )
        low = rng.random() < 0.1  # some vehicles start the run nearly empty
        fleet.append(
            SimVehicle(
                vin=vins.make(model, model_year),
                make=model.make,
                model=model.model,
                model_year=model_year,
                hw_rev=hw.name,
                modem=hw.modem,
                battery_kwh=model.battery_kwh,
                wh_per_km=model.wh_per_km * rng.uniform(0.93, 1.08),
                pack_voltage=model.pack_voltage,
                max_dc_kw=model.max_dc_kw,
                firmware_version=_firmware(rng, model_year),
                metro=metro,
                zone=zone,
                role=role,
                home=home,
                work=work,
                home_wifi=home_wifi,
                low_soc=rng.uniform(8.0, 25.0),
                plug_below=rng.uniform(35.0, 55.0) if rng.random() < 0.3 else 90.0,
                soc=round(rng.uniform(8.0, 20.0) if low else rng.uniform(30.0, 95.0), 2),
                odometer_km=round(rng.uniform(500, 18_000) * (2027 - model_year), 1),
                phase=rng.random(),
            )
        )
    return fleet


def fleet_definition(fleet: list[SimVehicle]) -> list[dict[str, object]]:
    """What was provisioned per vehicle: identity and the firmware it left the factory with."""
    return [
        {
            "vin": v.vin,
            "make": v.make,
            "model": v.model,
            "model_year": v.model_year,
            "hw_rev": v.hw_rev,
            "firmware_version": v.firmware_version,
            "metro": v.metro.name,
            "region": v.metro.region,
        }
        for v in fleet
    ]


def write_fleet_file(path: Path, fleet: list[SimVehicle], seed: int) -> None:
    """The fleet definition as JSON, replaced atomically so a reader never sees half a file.

    It also holds the vehicles' private signing keys (``private_keys``, vin -> hex), so a restarted
    simulator signs with the keys the registry holds; the file is written owner-only.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    body = {"seed": seed, "vehicles": fleet_definition(fleet), "private_keys": fleet_private_keys(fleet)}
    partial.touch(mode=0o600)
    partial.write_text(json.dumps(body))
    partial.replace(path)


def read_private_keys(path: Path) -> dict[str, str]:
    """The private keys an earlier run wrote to ``path`` (vin -> hex); empty if none."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    keys = data.get("private_keys") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in keys.items()} if isinstance(keys, dict) else {}
