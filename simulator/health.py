"""What a vehicle's health monitor counts, and the faults a bad release adds (``--bad-release``).

Healthy vehicles set the odd fault code (DTC), reboot now and then, lose their link in coverage gaps
and lose a little charge while parked (vampire drain), each at a low rate with its own spread: the
drain rate differs per vehicle (a fixed factor from its VIN) and per interval. The counters only grow,
like an odometer, and ride in every reading as ``health`` (fleetota_core.domain.telemetry.HealthCounters).
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING

from fleetota_core.domain.telemetry import DTC_PATTERN, SEMVER_PATTERN

if TYPE_CHECKING:
    import random

# Base rates of a healthy vehicle, per hour of its own time.
BASE_DTC_PER_H = 0.005  # one code every ~8 days
BASE_REBOOT_PER_H = 0.002  # one unexpected reboot every ~3 weeks
BASE_LINK_DROP_PER_H = 0.02  # modem resets; coverage gaps and garages add their own drops
BASE_PARKED_DRAIN_PCT_H = 0.08  # state-of-charge points per parked hour (12 V system, telematics)
_BASE_CODES = ("P0420", "U0100", "B1318", "C0035", "P0562")
EFFECTS = ("parked_drain", "dtc", "reboot", "link_drop")
_EFFECT_HELP = "parked_drain=FACTOR, dtc=CODE@PCT_PER_HOUR, reboot=PCT_PER_HOUR or link_drop=PCT_PER_HOUR"


@dataclass
class ReleaseFault:
    """What a bad release does to every vehicle that runs it (effects of one version add up)."""

    drain_factor: float = 1.0
    dtc_per_h: float = 0.0
    dtc_code: str = "P0A80"
    reboot_per_h: float = 0.0
    link_drop_per_h: float = 0.0


@dataclass
class ReleaseFaults:
    by_version: dict[str, ReleaseFault] = field(default_factory=dict)

    def of(self, version: str) -> ReleaseFault | None:
        return self.by_version.get(version)

    def add(self, text: str) -> None:
        """Add one ``VERSION:EFFECT``; ValueError says what is wrong with it."""
        version, sep, effect = text.partition(":")
        if not sep or not re.match(SEMVER_PATTERN, version):
            raise ValueError(
                f"{text!r} is not VERSION:EFFECT with a semantic version, e.g. 3.5.0:parked_drain=3"
            )
        name, eq, value = effect.partition("=")
        if name not in EFFECTS or not eq:
            raise ValueError(f"{text!r}: the effect must be one of {_EFFECT_HELP}")
        fault = self.by_version.setdefault(version, ReleaseFault())
        if name == "dtc":
            code, at, pct = value.partition("@")
            if not at or not re.match(DTC_PATTERN, code):
                raise ValueError(f"{text!r}: dtc wants CODE@PCT_PER_HOUR with a code such as P0A80")
            fault.dtc_code, fault.dtc_per_h = code, fault.dtc_per_h + _percent(text, pct)
        elif name == "parked_drain":
            fault.drain_factor *= _number(text, value, 0.0, 1000.0)
        elif name == "reboot":
            fault.reboot_per_h += _percent(text, value)
        else:
            fault.link_drop_per_h += _percent(text, value)


def _number(text: str, value: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{text!r}: {value!r} is not a number") from None
    if not low < number <= high or math.isnan(number):
        raise ValueError(f"{text!r}: {value} must be above {low:g} and at most {high:g}")
    return number


def _percent(text: str, value: str) -> float:
    return _number(text, value, 0.0, 100.0) / 100.0


def _chance(per_h: float, dt: float) -> float:
    return 1.0 - math.exp(-per_h * dt / 3600.0)


class HealthMonitor:
    """One vehicle's counters since provisioning, advanced once per reading."""

    __slots__ = (
        "drain_pct_h", "dtc_count", "faults", "jitter", "last_dtc", "link_drops", "observed_s",
        "parked_drain_pct", "parked_s", "reboots", "was_online",
    )  # fmt: skip

    def __init__(self, vin: str, faults: ReleaseFaults | None = None) -> None:
        # Each vehicle drains at its own rate (battery age, accessories): a fixed log-normal factor.
        u = (zlib.crc32(f"drain:{vin}".encode()) % 10_000 + 0.5) / 10_000
        self.drain_pct_h = BASE_PARKED_DRAIN_PCT_H * math.exp(0.35 * NormalDist().inv_cdf(u))
        self.faults = faults or ReleaseFaults()
        self.observed_s = 0.0
        self.dtc_count = self.reboots = self.link_drops = 0
        self.parked_s = 0.0
        self.parked_drain_pct = 0.0
        self.last_dtc: str | None = None
        self.jitter = 1.0
        self.was_online = False

    def parked(self, firmware_version: str, soc: float, dt: float) -> float:
        """Drain while parked and not charging for ``dt`` seconds; the new state of charge."""
        fault = self.faults.of(firmware_version)
        rate = self.drain_pct_h * self.jitter * (fault.drain_factor if fault is not None else 1.0)
        new_soc = max(0.5, soc - rate * dt / 3600.0)
        self.parked_s += dt
        self.parked_drain_pct += soc - new_soc
        return new_soc

    def tick(self, firmware_version: str, dt: float, rng: random.Random) -> float:
        """Count this interval's events; the seconds of a link drop to start now (0: none)."""
        self.observed_s += dt
        self.jitter = rng.uniform(0.6, 1.4)
        fault = self.faults.of(firmware_version)
        if rng.random() < _chance(BASE_DTC_PER_H, dt):
            self.dtc_count += 1
            self.last_dtc = rng.choice(_BASE_CODES)
        if fault is not None and fault.dtc_per_h and rng.random() < _chance(fault.dtc_per_h, dt):
            self.dtc_count += 1
            self.last_dtc = fault.dtc_code
        reboot = BASE_REBOOT_PER_H + (fault.reboot_per_h if fault is not None else 0.0)
        if rng.random() < _chance(reboot, dt):
            self.reboots += 1
        drop = BASE_LINK_DROP_PER_H + (fault.link_drop_per_h if fault is not None else 0.0)
        # A dropped link stays down past the next reading, so the reading sees it (and counts it).
        return dt * rng.uniform(1.2, 2.5) if rng.random() < _chance(drop, dt) else 0.0

    def sensed(self, online: bool) -> None:
        """After each reading's network sense: online then offline now is one link drop."""
        if self.was_online and not online:
            self.link_drops += 1
        self.was_online = online

    def json(self) -> str:
        code = "null" if self.last_dtc is None else f'"{self.last_dtc}"'
        return (
            f'{{"observed_s":{int(self.observed_s)},"dtc_count":{self.dtc_count},"reboots":{self.reboots},'
            f'"link_drops":{self.link_drops},"parked_s":{int(self.parked_s)},'
            f'"parked_drain_pct":{self.parked_drain_pct:.4f},"last_dtc":{code}}}'
        )
