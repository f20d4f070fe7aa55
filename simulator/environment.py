"""What a metro is like at a moment: local clock, air temperature and cellular coverage."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

# Air temperature per metro: annual mean, seasonal swing and day-night swing (degrees C).
_CLIMATE: dict[str, tuple[float, float, float]] = {
    "San Francisco Bay Area": (15.0, 4.0, 6.0),
    "Los Angeles": (18.5, 5.0, 6.0),
    "Denver": (10.5, 12.0, 8.0),
    "Chicago": (10.5, 14.0, 5.0),
    "New York": (13.0, 12.0, 5.0),
    "Berlin": (10.0, 10.0, 5.0),
    "Munich": (9.0, 10.0, 6.0),
    "London": (11.5, 7.0, 4.0),
}
DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Conditions:
    """One metro's local clock offset and air temperature, computed once per tick."""

    utc_offset_s: float
    ambient_c: float

    def local_seconds(self, t: float) -> float:
        """Seconds since local midnight."""
        return (t + self.utc_offset_s) % DAY

    def weekday(self, t: float) -> int:
        """Monday is 0 (1970-01-01 was a Thursday)."""
        return int((t + self.utc_offset_s) // DAY + 3) % 7


def conditions(metro: str, timezone: str, t: float) -> Conditions:
    """Local conditions in ``metro`` at epoch second ``t``."""
    local = datetime.fromtimestamp(t, ZoneInfo(timezone))
    offset = local.utcoffset()
    offset_s = offset.total_seconds() if offset is not None else 0.0
    mean, seasonal, daily = _CLIMATE.get(metro, (12.0, 8.0, 5.0))
    day_of_year = datetime.fromtimestamp(t, UTC).timetuple().tm_yday
    hour = ((t + offset_s) % DAY) / 3600.0
    ambient = (
        mean
        - seasonal * math.cos(2 * math.pi * (day_of_year - 15) / 365.0)
        - daily * math.cos(2 * math.pi * (hour - 3.0) / 24.0)
    )
    return Conditions(offset_s, round(ambient, 2))


def coverage(lat: float, lon: float, salt: int) -> float:
    """A stable pseudo-random coverage quality in [0, 1) for the ~1 km cell around a position.

    Integer hashing (not Python's salted ``hash``) so the same seed gives the same map in every run.
    """
    cell_lat = math.floor(lat * 100)
    cell_lon = math.floor(lon * 100)
    h = (cell_lat * 73_856_093) ^ (cell_lon * 19_349_663) ^ (salt * 83_492_791)
    h = (h ^ (h >> 13)) * 0x5BD1E995 & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0xFFFF) / 65_536.0
