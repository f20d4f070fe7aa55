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

import functools
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from fleetota_core.adapters.fleet_snapshot import ROW_COLUMNS
from fleetota_core.domain.telemetry import DriveState, FirmwareVersion, NetworkType
from fleetota_core.domain.vin import InvalidVINError, validate_vin

if TYPE_CHECKING:
    from collections.abc import Mapping

_ROW_KEYS = frozenset(ROW_COLUMNS)
_TEXT = ("make", "model", "hw_rev")  # required strings
_OPTIONAL_TEXT = ("region", "metro")
_FLOATS = ("lat", "lon", "speed_kph", "soc_pct", "odometer_km", "health_observed_s", "health_parked_s",
           "health_parked_drain")  # fmt: skip
_INTS = ("signal_dbm", "health_dtc", "health_reboots", "health_link_drops")  # floats in the snapshot
_FLAGS = ("charging", "online", "needs_update")
_DRIVE_STATES = frozenset(s.value for s in DriveState)
_NETWORKS = frozenset(n.value for n in NetworkType)
# The snapshot's timestamp (``vehicle_state.iso_utc``): fixed width, UTC, ASCII digits.
_ISO_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_EXACT = 2**53  # beyond this an int is not exactly a float, nor a float surely an int the model takes
_VERSION = TypeAdapter(FirmwareVersion)


@functools.lru_cache(maxsize=4096)
def _version(text: str) -> bool:
    # The model's own rule, once per version string: a fleet runs a handful.
    try:
        return _VERSION.validate_python(text) == text
    except PydanticValidationError:
        return False


def _vin(vin: str) -> bool:
    try:
        return validate_vin(vin) == vin
    except InvalidVINError:
        return False


def _text(value: Any) -> bool:
    # ASCII: a string the model surely takes as it is (a lone surrogate, which JSON can carry, it may not).
    return type(value) is str and value.isascii()


def _timestamp(value: str) -> bool:
    if _ISO_UTC.fullmatch(value) is None:
        return False
    try:
        datetime.fromisoformat(value)  # a real date and time (no 31 November, no hour 24)
    except ValueError:
        return False
    return True


def _number(value: Any, whole: bool) -> bool:
    kind = type(value)
    if kind is int:
        return -_EXACT < value < _EXACT
    if kind is float:
        return -_EXACT < value < _EXACT and (not whole or value.is_integer())  # also False for nan
    return False


def is_plain_vehicle(vin: str, row: Mapping[str, Any]) -> bool:
    """True if ``Vehicle`` surely accepts this row (as ``vehicle_from_row`` gives it); False: ask it."""
    if row.keys() != _ROW_KEYS or not _vin(vin):
        return False
    for name in _TEXT:
        if not _text(row[name]):
            return False
    for name in _OPTIONAL_TEXT:
        if row[name] is not None and not _text(row[name]):
            return False
    year, version, seq = row["model_year"], row["firmware_version"], row["last_seq"]
    if (
        type(year) is not int
        or not 1980 <= year <= 2039
        or type(seq) is not int
        or not -_EXACT < seq < _EXACT
    ):
        return False
    if type(version) is not str or not _version(version):
        return False
    ts = row["last_ts"]
    if ts is not None and (type(ts) is not str or not _timestamp(ts)):
        return False
    for name in _FLOATS:
        if row[name] is not None and not _number(row[name], whole=False):
            return False
    for name in _INTS:
        if row[name] is not None and not _number(row[name], whole=True):
            return False
    for name in _FLAGS:
        if row[name] is not None and type(row[name]) is not bool:
            return False
    drive, network = row["drive_state"], row["network"]
    return (drive is None or (type(drive) is str and drive in _DRIVE_STATES)) and (
        network is None or (type(network) is str and network in _NETWORKS)
    )
