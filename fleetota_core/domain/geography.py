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
