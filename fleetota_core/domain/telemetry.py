"""The telemetry record a vehicle sends, one reading at a time, with an optional OTA report."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from fleetota_core.domain.bounds import MAX_SAFE_INT
from fleetota_core.domain.vin import validate_vin

SCHEMA_VERSION: Final = 1
SEMVER_PATTERN = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$"

VIN = Annotated[str, Field(min_length=17, max_length=17), AfterValidator(validate_vin)]
FirmwareVersion = Annotated[str, Field(pattern=SEMVER_PATTERN, max_length=64)]


class DriveState(StrEnum):
    DRIVING = "driving"
    PARKED = "parked"
    CHARGING = "charging"


class NetworkType(StrEnum):
    NR5G = "5G"
    LTE = "LTE"
    G3 = "3G"
    WIFI = "WIFI"
    NONE = "NONE"


CELLULAR_NETWORKS = frozenset({NetworkType.NR5G, NetworkType.LTE, NetworkType.G3})


class OtaStatus(StrEnum):
    """What a vehicle reports about a job; the deployment state machine decides what it means."""

    RECEIVED = "RECEIVED"
    DOWNLOADING = "DOWNLOADING"
    VERIFYING = "VERIFYING"
    DOWNLOADED = "DOWNLOADED"  # verified and staged; installs when the install policy allows
    INSTALLING = "INSTALLING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    ROLLED_BACK = "ROLLED_BACK"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Position(_Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    speed_kph: float = Field(ge=0, le=300)
    heading_deg: float = Field(ge=0, lt=360)


class Battery(_Strict):
    soc_pct: float = Field(ge=0, le=100, description="State of charge")
    voltage_v: float = Field(ge=0, le=1000)
    temp_c: float = Field(ge=-50, le=100)
    charging: bool


class Connectivity(_Strict):
    network: NetworkType
    signal_dbm: int | None = Field(default=None, ge=-140, le=-20, description="None when offline")


class OtaDelivery(_Strict):
    """How the vehicle obtained the image it verified: from a delta or the full image, at what cost."""

    artifact: Literal["delta", "full"]
    downloaded_bytes: int = Field(ge=0, le=MAX_SAFE_INT, description="Delta and full-image bytes together")
    fallback: str | None = Field(
        default=None, max_length=64, description="Why an offered delta was not used (DELTA_...)"
    )


class OtaReport(_Strict):
    campaign_id: str = Field(min_length=1, max_length=64)
    deployment_id: str = Field(min_length=1, max_length=128)
    status: OtaStatus
    attempt: int = Field(default=1, ge=1, le=100)
    progress_pct: float = Field(default=0, ge=0, le=100)
    target_version: FirmwareVersion
    error_code: str | None = Field(default=None, max_length=64)
    detail: str | None = Field(default=None, max_length=512)
    delivery: OtaDelivery | None = None
    bytes_wifi: int | None = Field(
        default=None, ge=0, le=MAX_SAFE_INT, description="Bytes this attempt downloaded over Wi-Fi so far"
    )
    bytes_cellular: int | None = Field(
        default=None, ge=0, le=MAX_SAFE_INT, description="Bytes this attempt downloaded over cellular so far"
    )
    signature: str | None = Field(
        default=None,
        max_length=128,
        description="The vehicle's ECDSA P-256 signature of this report, base64 DER (docs/telemetry.md)",
    )


DTC_PATTERN = r"^[PCBU][0-9A-F]{4}$"
_MAX_PARKED_DRAIN_PCT = 1e9  # SoC points lost while parked, summed over the vehicle's life


class HealthCounters(_Strict):
    """Counters the vehicle keeps since it was provisioned, like its odometer: they never reset, not
    on a reboot and not on a firmware update. The health gate compares their growth over a soak
    (domain/vehicle_health.py); a vehicle that sends none is left out of the comparison."""

    observed_s: int = Field(ge=0, le=MAX_SAFE_INT, description="Seconds the health monitor has run")
    dtc_count: int = Field(ge=0, le=MAX_SAFE_INT, description="Diagnostic trouble codes set")
    reboots: int = Field(
        ge=0, le=MAX_SAFE_INT, description="Unexpected reboots (an install's planned restart is not one)"
    )
    link_drops: int = Field(ge=0, le=MAX_SAFE_INT, description="Times the cellular or Wi-Fi link dropped")
    parked_s: int = Field(ge=0, le=MAX_SAFE_INT, description="Seconds parked and not charging")
    parked_drain_pct: float = Field(
        ge=0, le=_MAX_PARKED_DRAIN_PCT, description="State-of-charge points lost while parked, not charging"
    )
    last_dtc: str | None = Field(default=None, pattern=DTC_PATTERN, description="The newest code, e.g. P0A80")


class TelemetryRecord(_Strict):
    """One reading from one vehicle. ``seq`` increases per vehicle, so order survives late uploads."""

    schema_version: Literal[1] = SCHEMA_VERSION
    vin: VIN
    ts: AwareDatetime = Field(
        description="When the reading was taken; quarantined if older than the raw retention (365 days) "
        "or more than 60 s ahead of the processor's clock"
    )
    seq: int = Field(ge=0, le=MAX_SAFE_INT, description="Per-vehicle reading counter, at most 2^53 - 1")
    model: str = Field(min_length=1, max_length=64)
    hw_rev: str = Field(min_length=1, max_length=16)
    position: Position
    battery: Battery
    drive_state: DriveState
    connectivity: Connectivity
    odometer_km: float = Field(ge=0, le=5_000_000)
    firmware_version: FirmwareVersion
    ota: OtaReport | None = None
    health: HealthCounters | None = None
    changed: bool | None = Field(
        default=None,
        description="Report by exception: true when the vehicle's drive state, network (online or not), "
        "firmware, battery category, charging or health event count changed, or it moved more than 1 km, "
        "since the last record it sent with changed true (and at least every 6 hours); false otherwise. "
        "The processor then writes the vehicle's state without reading it first; absent: it decides itself",
    )

    @property
    def online(self) -> bool:
        return self.connectivity.network is not NetworkType.NONE


def telemetry_json_schema() -> dict[str, Any]:
    """The published JSON Schema (docs/telemetry.schema.json is generated from this)."""
    schema = TelemetryRecord.model_json_schema()
    schema["$id"] = "https://fleetota.dev/schemas/telemetry-record-v1.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
