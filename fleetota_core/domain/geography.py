"""Metro areas the fleet operates in: where vehicles live, their region and their local time zone."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Metro:
    name: str
    region: str
    timezone: str
    lat: float
    lon: float
    # Bounding box of the land the fleet drives on: (south, west, north, east).
    bbox: tuple[float, float, float, float]


METROS: tuple[Metro, ...] = (
    Metro(
        "San Francisco Bay Area",
        "us-west",
        "America/Los_Angeles",
        37.55,
        -122.05,
        (37.20, -122.50, 38.00, -121.75),
    ),
    Metro("Los Angeles", "us-west", "America/Los_Angeles", 34.05, -118.25, (33.75, -118.45, 34.30, -117.70)),
    Metro("Denver", "us-central", "America/Denver", 39.74, -104.99, (39.55, -105.20, 39.95, -104.70)),
    Metro("Chicago", "us-central", "America/Chicago", 41.88, -87.70, (41.65, -88.10, 42.10, -87.65)),
    Metro("New York", "us-east", "America/New_York", 40.73, -73.90, (40.55, -74.25, 41.00, -73.70)),
    Metro("Berlin", "eu-central", "Europe/Berlin", 52.52, 13.40, (52.35, 13.10, 52.65, 13.75)),
    Metro("Munich", "eu-central", "Europe/Berlin", 48.14, 11.58, (48.00, 11.35, 48.25, 11.75)),
    Metro("London", "eu-west", "Europe/London", 51.51, -0.12, (51.30, -0.50, 51.70, 0.25)),
)
METRO_BY_NAME = {metro.name: metro for metro in METROS}
UNKNOWN_REGION = "unknown"


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(a))


def nearest_metro(lat: float, lon: float, max_km: float = 150.0) -> Metro | None:
    """The metro a position belongs to, or None when it is far from all of them."""
    best = min(METROS, key=lambda m: distance_km(lat, lon, m.lat, m.lon))
    return best if distance_km(lat, lon, best.lat, best.lon) <= max_km else None


# Where simulated vehicles may be: hand-made convex polygons of (lat, lon) per metro, each drawn
# well inside the coastline so that no point in it, and so no straight trip between two points in
# it, is in the sea, a bay or a large lake (SF Bay, Lake Michigan, the Atlantic, the Pacific,
# Jamaica Bay, Berlin's Havel lakes, London's reservoirs). Rivers and small ponds are not excluded:
# real roads cross them on bridges.
LAND_ZONES: dict[str, tuple[tuple[tuple[float, float], ...], ...]] = {
    "San Francisco Bay Area": (
        # Santa Clara Valley (San Jose, Sunnyvale, Cupertino), south of the bay's salt ponds.
        ((37.24, -122.02), (37.36, -122.04), (37.40, -121.93), (37.36, -121.80), (37.26, -121.80)),
        # East Bay inland (Walnut Creek, San Ramon), east of the Berkeley Hills.
        ((37.76, -122.00), (37.92, -122.08), (37.95, -121.98), (37.78, -121.90)),
    ),
    "Los Angeles": (
        (
            (33.85, -118.20),
            (33.90, -118.35),
            (34.09, -118.35),
            (34.14, -118.15),
            (34.07, -117.78),
            (33.88, -117.86),
        ),
    ),
    "Denver": (((39.68, -105.08), (39.83, -105.08), (39.83, -104.80), (39.68, -104.80)),),
    "Chicago": (((41.72, -88.00), (42.00, -88.00), (42.00, -87.72), (41.85, -87.67), (41.72, -87.67)),),
    "New York": (
        # Brooklyn and Queens inland, clear of Jamaica Bay, Flushing Bay and Prospect Park Lake.
        ((40.635, -73.955), (40.690, -73.950), (40.715, -73.870), (40.700, -73.800)),
        # Essex County, New Jersey, west of the Passaic.
        ((40.73, -74.24), (40.80, -74.24), (40.80, -74.18), (40.73, -74.19)),
        # The northern Bronx and southern Westchester, west of Long Island Sound.
        ((40.88, -73.87), (40.98, -73.87), (40.98, -73.81), (40.89, -73.83)),
    ),
    "Berlin": (((52.47, 13.31), (52.55, 13.31), (52.55, 13.47), (52.47, 13.47)),),
    "Munich": (((48.08, 11.45), (48.20, 11.45), (48.20, 11.68), (48.08, 11.68)),),
    "London": (((51.42, -0.30), (51.55, -0.30), (51.55, -0.08), (51.42, 0.00)),),
}


def in_polygon(lat: float, lon: float, polygon: tuple[tuple[float, float], ...]) -> bool:
    """Whether (lat, lon) is inside ``polygon`` (ray casting; fine at city scale)."""
    inside = False
    j = len(polygon) - 1
    for i, (lat_i, lon_i) in enumerate(polygon):
        lat_j, lon_j = polygon[j]
        if (lat_i > lat) != (lat_j > lat):
            crossing = lon_i + (lat - lat_i) * (lon_j - lon_i) / (lat_j - lat_i)
            if lon < crossing:
                inside = not inside
        j = i
    return inside


def in_land_zone(metro: str, lat: float, lon: float) -> bool:
    """Whether a position is inside one of the metro's land zones."""
    return any(in_polygon(lat, lon, zone) for zone in LAND_ZONES.get(metro, ()))
