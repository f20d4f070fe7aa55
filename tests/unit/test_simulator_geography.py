"""The land zones the simulator drives in stay inside their metros and out of the water."""

from __future__ import annotations

import pytest
from simulator_support import WATER_BOXES, in_water

from fleetota_core.domain.geography import LAND_ZONES, METRO_BY_NAME, METROS, distance_km, in_land_zone


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _grid(zone: tuple[tuple[float, float], ...], steps: int = 40) -> list[tuple[float, float]]:
    lats, lons = [p[0] for p in zone], [p[1] for p in zone]
    return [
        (min(lats) + (max(lats) - min(lats)) * i / steps, min(lons) + (max(lons) - min(lons)) * j / steps)
        for i in range(steps + 1)
        for j in range(steps + 1)
    ]


def test_every_metro_has_at_least_one_land_zone() -> None:
    assert set(LAND_ZONES) == {m.name for m in METROS}


@pytest.mark.parametrize(("metro", "zone"), [(m, z) for m, zones in LAND_ZONES.items() for z in zones])
def test_each_land_zone_is_convex_so_straight_trips_inside_it_stay_inside(metro: str, zone: tuple) -> None:
    signs = {
        _cross(zone[i], zone[(i + 1) % len(zone)], zone[(i + 2) % len(zone)]) > 0 for i in range(len(zone))
    }
    assert len(signs) == 1, f"{metro} zone is not convex"


@pytest.mark.parametrize(("metro", "zone"), [(m, z) for m, zones in LAND_ZONES.items() for z in zones])
def test_each_land_zone_lies_in_its_metro_bbox_within_100_km_and_out_of_the_water(
    metro: str, zone: tuple
) -> None:
    south, west, north, east = METRO_BY_NAME[metro].bbox
    m = METRO_BY_NAME[metro]
    for lat, lon in zone:
        assert south <= lat <= north and west <= lon <= east
        assert distance_km(lat, lon, m.lat, m.lon) < 100
    inside = [p for p in _grid(zone) if in_land_zone(metro, *p)]
    assert len(inside) > 100
    assert [(p, in_water(*p)) for p in inside if in_water(*p)] == []


def test_points_in_known_water_are_never_in_a_land_zone() -> None:
    for name, (south, west, north, east) in WATER_BOXES.items():
        centre = ((south + north) / 2, (west + east) / 2)
        assert not any(in_land_zone(metro, *centre) for metro in LAND_ZONES), name
