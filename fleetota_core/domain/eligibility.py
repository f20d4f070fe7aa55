"""Whether a vehicle may be notified now, judged from its latest telemetry; deferrals say why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fleetota_core.domain.bounds import MAX_OFFLINE_AFTER
from fleetota_core.domain.telemetry import DriveState, NetworkType

if TYPE_CHECKING:
    from fleetota_core.domain.vehicle import Vehicle

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class MaintenanceWindow(BaseModel):
    """A daily window in the vehicle's local time; ``end`` before ``start`` wraps past midnight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time
    end: time
    days: tuple[str, ...] = _DAYS

    @model_validator(mode="after")
    def _check(self) -> MaintenanceWindow:
        unknown = [d for d in self.days if d not in _DAYS]
        if unknown:
            raise ValueError(f"unknown day(s) {unknown}; use {', '.join(_DAYS)}")
        if self.start == self.end:
            raise ValueError("a maintenance window needs start != end")
        return self

    def contains(self, local: datetime) -> bool:
        t, day = local.time().replace(tzinfo=None), _DAYS[local.weekday()]
        if self.start < self.end:
            return day in self.days and self.start <= t < self.end
        # Wrapping window: the part after midnight belongs to the previous day's window.
        if t >= self.start:
            return day in self.days
        previous_day = _DAYS[(local.weekday() - 1) % 7]
        return t < self.end and previous_day in self.days

    def describe(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


class EligibilityRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    min_soc_pct: float = Field(default=30, ge=0, le=100)
    charging_overrides_soc: bool = True  # a charging car has the energy to finish an install
    require_parked: bool = True
    networks: tuple[NetworkType, ...] = (NetworkType.WIFI, NetworkType.NR5G, NetworkType.LTE)
    min_signal_dbm: int = Field(default=-110, ge=-140, le=-20)
    maintenance_windows: tuple[MaintenanceWindow, ...] = ()  # empty: any time
    # No reading for this long: not reachable.
    offline_after: timedelta = Field(default=timedelta(minutes=15), gt=timedelta(0), le=MAX_OFFLINE_AFTER)


@dataclass(frozen=True)
class Eligible:
    eligible = True
    reason = None


@dataclass(frozen=True)
class Deferred:
    reason: str
    eligible = False


Verdict = Eligible | Deferred


def local_time(vehicle: Vehicle, now: datetime) -> datetime:
    try:
        return now.astimezone(ZoneInfo(vehicle.timezone))
    except (ZoneInfoNotFoundError, ValueError):
        return now.astimezone(ZoneInfo("UTC"))


def evaluate(vehicle: Vehicle | None, rules: EligibilityRules, now: datetime) -> Verdict:
    """Eligible, or Deferred with the first rule that fails (e.g. ``"battery 18% < 30%"``).

    Every rule at once: the install policy ``immediate`` downloads and installs in one go.
    """
    return _first(vehicle, rules, now, (_reach, _battery, _parked, _network, _signal, _window))


def evaluate_download(vehicle: Vehicle | None, rules: EligibilityRules, now: datetime) -> Verdict:
    """May the vehicle start downloading now: reachable over an allowed network with enough signal.

    Downloading is slow and harmless (the image goes to the inactive partition), so a two-phase
    campaign downloads whatever the battery, the drive state or the time of day.
    """
    return _first(vehicle, rules, now, (_reach, _network, _signal))


def evaluate_install(vehicle: Vehicle | None, rules: EligibilityRules, now: datetime) -> Verdict:
    """May a staged image be installed now: reachable, charged, parked and inside a maintenance window."""
    return _first(vehicle, rules, now, (_reach, _battery, _parked, _window))


_Rule = Callable[["Vehicle", EligibilityRules, datetime], "str | None"]


def _first(
    vehicle: Vehicle | None, rules: EligibilityRules, now: datetime, checks: tuple[_Rule, ...]
) -> Verdict:
    if vehicle is None or vehicle.last_ts is None:
        return Deferred("no telemetry yet")
    for check in checks:
        reason = check(vehicle, rules, now)
        if reason is not None:
            return Deferred(reason)
    return Eligible()


def _reach(vehicle: Vehicle, rules: EligibilityRules, now: datetime) -> str | None:
    # Judged against the tick's clock, not the stored ``online`` flag (set at ingest time).
    silent = now - (vehicle.last_ts or now)
    if vehicle.network is NetworkType.NONE or silent > rules.offline_after:
        return f"offline (last reading {int(silent.total_seconds() // 60)} min ago)"
    return None


def _battery(vehicle: Vehicle, rules: EligibilityRules, now: datetime) -> str | None:
    if vehicle.soc_pct is None:
        return "battery unknown"
    if vehicle.soc_pct < rules.min_soc_pct and not (rules.charging_overrides_soc and vehicle.charging):
        return f"battery {vehicle.soc_pct:.0f}% < {rules.min_soc_pct:.0f}%"
    return None


def _parked(vehicle: Vehicle, rules: EligibilityRules, now: datetime) -> str | None:
    if rules.require_parked and vehicle.drive_state is DriveState.DRIVING:
        return f"driving at {vehicle.speed_kph:.0f} km/h"
    return None


def _network(vehicle: Vehicle, rules: EligibilityRules, now: datetime) -> str | None:
    if vehicle.network not in rules.networks:
        allowed = ", ".join(n.value for n in rules.networks)
        return f"network {vehicle.network.value} not in {allowed}"
    return None


def _signal(vehicle: Vehicle, rules: EligibilityRules, now: datetime) -> str | None:
    if vehicle.signal_dbm is not None and vehicle.signal_dbm < rules.min_signal_dbm:
        return f"signal {vehicle.signal_dbm} dBm < {rules.min_signal_dbm} dBm"
    return None


def _window(vehicle: Vehicle, rules: EligibilityRules, now: datetime) -> str | None:
    if rules.maintenance_windows:
        local = local_time(vehicle, now)
        if not any(w.contains(local) for w in rules.maintenance_windows):
            windows = ", ".join(w.describe() for w in rules.maintenance_windows)
            return f"outside maintenance window {windows} (local {local:%a %H:%M})"
    return None


def next_opening(windows: tuple[MaintenanceWindow, ...], local: datetime) -> datetime:
    """The first moment at or after ``local`` (an aware local time) inside one of ``windows``.

    ``local`` itself when there are no windows or it is inside one; found minute by minute on the
    hour grid of the windows' starts, at most eight days ahead.
    """
    if not windows or any(w.contains(local) for w in windows):
        return local
    day = local.replace(second=0, microsecond=0)
    candidates = []
    for offset in range(9):
        date = (day + timedelta(days=offset)).date()
        for w in windows:
            opening = day.replace(
                year=date.year, month=date.month, day=date.day, hour=w.start.hour, minute=w.start.minute
            )
            if opening >= local and w.contains(opening):
                candidates.append(opening)
    return min(candidates) if candidates else local
