"""A compiled mirror of ``TelemetryRecord`` for the hot path (msgspec decodes ~10x faster than pydantic).

``TelemetryRecord`` stays the schema of record. This mirror may only be *stricter*: whatever it
rejects is handed to pydantic, which decides (and names the reason). Where the two differ on
purpose: no lax coercion (``"12"`` for a number, ``1.0`` for an int), and the VIN check digit is
checked after decoding (cached per VIN). ``tests/unit/test_ingest_decode.py`` pins the equivalence.
"""

from __future__ import annotations

from datetime import datetime  # noqa: TC003 - msgspec reads the annotations at class creation
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from fleetota_core.domain.bounds import MAX_SAFE_INT
from fleetota_core.domain.telemetry import DriveState, NetworkType, OtaStatus  # noqa: TC001 - as above

# pydantic's (Rust) ``$`` means end of text; Python's also matches before a final newline, so ``\Z``.
_SEMVER = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?\Z"
FirmwareVersion = Annotated[str, Meta(pattern=_SEMVER, max_length=64)]


class _Wire(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    """No unknown fields (pydantic ``extra="forbid"``); ``gc=False`` because records hold no cycles.

    Subclasses inherit these options; they repeat ``frozen=True`` only because mypy does not see that.
    """


class WirePosition(_Wire, frozen=True):
    lat: Annotated[float, Meta(ge=-90, le=90)]
    lon: Annotated[float, Meta(ge=-180, le=180)]
    speed_kph: Annotated[float, Meta(ge=0, le=300)]
    heading_deg: Annotated[float, Meta(ge=0, lt=360)]


class WireBattery(_Wire, frozen=True):
    soc_pct: Annotated[float, Meta(ge=0, le=100)]
    voltage_v: Annotated[float, Meta(ge=0, le=1000)]
    temp_c: Annotated[float, Meta(ge=-50, le=100)]
    charging: bool


class WireConnectivity(_Wire, frozen=True):
    network: NetworkType
    signal_dbm: Annotated[int, Meta(ge=-140, le=-20)] | None = None


class WireOtaDelivery(_Wire, frozen=True):
    artifact: Literal["delta", "full"]
    downloaded_bytes: Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)]
    fallback: Annotated[str, Meta(max_length=64)] | None = None


class WireOtaReport(_Wire, frozen=True):
    campaign_id: Annotated[str, Meta(min_length=1, max_length=64)]
    deployment_id: Annotated[str, Meta(min_length=1, max_length=128)]
    status: OtaStatus
    target_version: FirmwareVersion
    attempt: Annotated[int, Meta(ge=1, le=100)] = 1
    progress_pct: Annotated[float, Meta(ge=0, le=100)] = 0
    error_code: Annotated[str, Meta(max_length=64)] | None = None
    detail: Annotated[str, Meta(max_length=512)] | None = None
    delivery: WireOtaDelivery | None = None
    bytes_wifi: Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)] | None = None
    bytes_cellular: Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)] | None = None
    signature: Annotated[str, Meta(max_length=128)] | None = None


class WireHealth(_Wire, frozen=True):
    observed_s: Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)]
    dtc_count: Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)]
    reboots: Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)]
    link_drops: Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)]
    parked_s: Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)]
    parked_drain_pct: Annotated[float, Meta(ge=0, le=1e9)]
    last_dtc: Annotated[str, Meta(pattern=r"^[PCBU][0-9A-F]{4}\Z")] | None = None


class WireRecord(_Wire, frozen=True):
    vin: Annotated[str, Meta(min_length=17, max_length=17)]
    ts: Annotated[datetime, Meta(tz=True)]
    seq: Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)]
    model: Annotated[str, Meta(min_length=1, max_length=64)]
    hw_rev: Annotated[str, Meta(min_length=1, max_length=16)]
    position: WirePosition
    battery: WireBattery
    drive_state: DriveState
    connectivity: WireConnectivity
    odometer_km: Annotated[float, Meta(ge=0, le=5_000_000)]
    firmware_version: FirmwareVersion
    schema_version: Literal[1] = 1
    ota: WireOtaReport | None = None
    health: WireHealth | None = None
    changed: bool | None = None


ARRAY_DECODER = msgspec.json.Decoder(list[WireRecord])
RECORD_DECODER = msgspec.json.Decoder(WireRecord)
DecodeError = msgspec.ValidationError, msgspec.DecodeError


def to_wire(record_json: bytes) -> WireRecord:
    """Re-decode a record pydantic accepted (after lax coercion) into the hot path's struct."""
    return RECORD_DECODER.decode(record_json)
