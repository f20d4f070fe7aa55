"""Whether a fleet snapshot row is surely a vehicle, without building one (campaign creation's targeting).

Targeting judges a snapshot row a vehicle when :class:`~fleetota_core.domain.vehicle.Vehicle` accepts
it. At 1,000,000 rows that validation was a fifth of a campaign creation, and creation needs nothing of
the vehicle but its VIN and version. :func:`is_plain_vehicle` answers True only for a row of the shape
the snapshot writes (``fleet_health.snapshot_row``) whose every value the model accepts as it is, or
converts without loss (an integral float for an int field); anything else (another type, a bound, an
unusual timestamp) it leaves to the model, so it may say False for a row that is a vehicle, never True
for one that is not. ``tests/unit/test_snapshot_row_check.py`` holds it to the model, field by field.
"""

from __future__ import annotations

import re
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from fleetota_core.domain.telemetry import DriveState, FirmwareVersion, NetworkType
from fleetota_core.domain.vin import is_valid_vin

if TYPE_CHECKING:
    from collections.abc import Mapping

_FLOATS = ("lat", "lon", "speed_kph", "soc_pct", "odometer_km", "health_observed_s", "health_parked_s",
           "health_parked_drain")  # fmt: skip
_INTS = ("signal_dbm", "health_dtc", "health_reboots", "health_link_drops")  # floats in the snapshot
_FLAGS = ("charging", "online", "needs_update")
# A fleet's few hundred combinations of identity, version, drive state and network: each judged once.
_IDENTITY = itemgetter("make", "model", "hw_rev", "region", "metro", "model_year", "firmware_version",
                       "drive_state", "network")  # fmt: skip
_FLOAT_VALUES, _INT_VALUES, _FLAG_VALUES = itemgetter(*_FLOATS), itemgetter(*_INTS), itemgetter(*_FLAGS)
_FLOAT_KINDS = frozenset({float, type(None)})
_INT_KINDS = frozenset({int, float, type(None)})
_FLAG_KINDS = frozenset({bool, type(None)})
_DRIVE_STATES = frozenset(s.value for s in DriveState)
_NETWORKS = frozenset(n.value for n in NetworkType)
# The snapshot's timestamp (``vehicle_state.iso_utc``): fixed width, UTC, ASCII digits.
_ISO_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_EXACT = 2**53  # beyond this a float is not surely an int the model takes, nor an int a float
_VERSION = TypeAdapter(FirmwareVersion)
_CACHE_LIMIT = 65_536
_identities: dict[tuple[Any, ...], bool] = {}


def _text(value: Any) -> bool:
    # ASCII: a string the model surely takes as it is (a lone surrogate, which JSON can carry, it may not).
    return type(value) is str and value.isascii()


def _version(text: Any) -> bool:
    # The model's own rule for a version string.
    try:
        return type(text) is str and _VERSION.validate_python(text) == text
    except PydanticValidationError:
        return False


def _plain_identity(values: tuple[Any, ...]) -> bool:
    make, model, hw_rev, region, metro, year, version, drive, network = values
    return (
        _text(make) and _text(model) and _text(hw_rev)
        and (region is None or _text(region)) and (metro is None or _text(metro))
        and type(year) is int and 1980 <= year <= 2039 and _version(version)
        and (drive is None or (type(drive) is str and drive in _DRIVE_STATES))
        and (network is None or (type(network) is str and network in _NETWORKS))
    )  # fmt: skip


def _remembered(cache: dict[Any, bool], key: Any, judge: Any) -> bool:
    try:
        return cache[key]
    except KeyError:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()  # bounded, whatever a snapshot holds
        cache[key] = verdict = judge(key)
        return verdict
    except TypeError:
        return False  # a list or an object where text belongs: not a plain value


def _timestamp(value: Any) -> bool:
    if type(value) is not str or _ISO_UTC.fullmatch(value) is None:
        return False
    try:
        datetime.fromisoformat(value)  # a real date and time (no 31 November, no hour 24)
    except ValueError:
        return False
    return True


def _whole(value: Any) -> bool:
    # An int field: an int, or a float without a fraction (the model takes 3.0 as 3, not 3.5).
    return value is None or (-_EXACT < value < _EXACT and (type(value) is int or value.is_integer()))


def is_plain_vehicle(vin: str, row: Mapping[str, Any]) -> bool:
    """True if ``Vehicle`` surely accepts this row (as ``vehicle_from_row`` gives it); False: ask it.

    Only the model's fields are read: it ignores other keys, and ``vehicle_from_row`` sets ``vin``
    and ``timezone`` itself. A missing one (a row of another shape) is left to the model.
    """
    try:
        year, seq, ts = row["model_year"], row["last_seq"], row["last_ts"]
        identity = _IDENTITY(row)
        floats, ints, flags = _FLOAT_VALUES(row), _INT_VALUES(row), _FLAG_VALUES(row)
    except KeyError:
        return False
    return (
        # model_year first: 2023.0 equals 2023 as a cache key, and the model takes both
        type(year) is int and type(seq) is int and -_EXACT < seq < _EXACT
        and is_valid_vin(vin)
        and _remembered(_identities, identity, _plain_identity)
        and _FLOAT_KINDS.issuperset(map(type, floats))
        and _INT_KINDS.issuperset(map(type, ints)) and all(map(_whole, ints))
        and _FLAG_KINDS.issuperset(map(type, flags))
        and (ts is None or _timestamp(ts))
    )  # fmt: skip
