"""A vehicle and the latest state the platform knows of it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fleetota_core.domain.telemetry import VIN, DriveState, FirmwareVersion, NetworkType


class BatteryCategory(StrEnum):
    CRITICAL = "critical"  # below 10 %
    LOW = "low"  # 10-30 %
    OK = "ok"  # 30-80 %
    HIGH = "high"  # 80 % and above


def battery_category(soc_pct: float) -> BatteryCategory:
    if soc_pct < 10:
        return BatteryCategory.CRITICAL
    if soc_pct < 30:
        return BatteryCategory.LOW
    if soc_pct < 80:
        return BatteryCategory.OK
    return BatteryCategory.HIGH


class Vehicle(BaseModel):
    """Identity plus the latest telemetry, as the vehicles table stores it."""

    model_config = ConfigDict(extra="ignore")

    vin: VIN
    make: str
    model: str
    model_year: int = Field(ge=1980, le=2039)
    hw_rev: str
    firmware_version: FirmwareVersion
    region: str = "unknown"
    metro: str | None = None
    timezone: str = "UTC"

    last_ts: AwareDatetime | None = None
    last_seq: int = -1
    lat: float | None = None
    lon: float | None = None
    speed_kph: float = 0
    soc_pct: float | None = None
    charging: bool = False
    drive_state: DriveState | None = None
    network: NetworkType = NetworkType.NONE
    signal_dbm: int | None = None
    odometer_km: float = 0
    online: bool = False
    needs_update: bool = False

    @property
    def battery_category(self) -> BatteryCategory | None:
        return None if self.soc_pct is None else battery_category(self.soc_pct)
