"""Places vehicles drive between: homes, workplaces, depots, public chargers and stops."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from fleetota_core.domain.geography import in_polygon

if TYPE_CHECKING:
    import random


class SiteKind(StrEnum):
    HOME = "home"
    WORK = "work"
    DEPOT = "depot"
    CHARGER = "charger"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class Site:
    kind: SiteKind
    lat: float
    lon: float
    charger_kw: float = 0.0  # 0: nothing to plug into
    wifi: bool = False
    underground: bool = False  # a garage without cellular coverage


@dataclass(frozen=True)
class ZoneSites:
    """The shared sites of one land zone; every trip stays inside that (convex) zone."""

    metro: str
    polygon: tuple[tuple[float, float], ...]
    depots: tuple[Site, ...]
    chargers: tuple[Site, ...]
    stops: tuple[Site, ...] = field(default=())


def random_point(rng: random.Random, polygon: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    """A uniformly random point inside ``polygon`` (rejection sampling in its bounding box)."""
    lats = [p[0] for p in polygon]
    lons = [p[1] for p in polygon]
    while True:
        lat = round(rng.uniform(min(lats), max(lats)), 6)
        lon = round(rng.uniform(min(lons), max(lons)), 6)
        if in_polygon(lat, lon, polygon):
            return lat, lon


def build_zone_sites(rng: random.Random, metro: str, polygon: tuple[tuple[float, float], ...]) -> ZoneSites:
    """Depots, public DC chargers and everyday stops (shops, customers) for one zone."""

    def site(kind: SiteKind, **kwargs: float | bool) -> Site:
        lat, lon = random_point(rng, polygon)
        return Site(kind, lat, lon, **kwargs)  # type: ignore[arg-type]

    depots = tuple(site(SiteKind.DEPOT, charger_kw=19.2, wifi=True) for _ in range(2))
    chargers = tuple(site(SiteKind.CHARGER, charger_kw=rng.choice((50.0, 150.0, 250.0))) for _ in range(8))
    stops = tuple(site(SiteKind.STOP, underground=rng.random() < 0.05) for _ in range(40))
    return ZoneSites(metro, polygon, depots, chargers, stops)
