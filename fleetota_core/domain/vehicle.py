"""A vehicle and the latest state the platform knows of it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fleetota_core.domain.telemetry import VIN, DriveState, FirmwareVersion, NetworkType
from fleetota_core.domain.vehicle_health import HealthReading


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
    # The health counters of the newest stored reading (domain/vehicle_health.py), if it had any.
    health_observed_s: float | None = None
    health_dtc: int | None = None
    health_reboots: int | None = None
    health_link_drops: int | None = None
    health_parked_s: float | None = None
    health_parked_drain: float | None = None

    @property
    def health(self) -> HealthReading | None:
        values = (
            self.health_observed_s,
            self.health_dtc,
            self.health_reboots,
            self.health_link_drops,
            self.health_parked_s,
            self.health_parked_drain,
        )
        return None if any(v is None for v in values) else HealthReading.from_values(values)

    @property
    def battery_category(self) -> BatteryCategory | None:
        return None if self.soc_pct is None else battery_category(self.soc_pct)
