"""A vehicle's health counters as the platform keeps them, and the per-vehicle rates the gate compares.

Vehicles count since they were provisioned (``TelemetryRecord.health``); the telemetry processor
stores the newest counters with the vehicle's state, so a rate over a soak is the difference of two
reads of the vehicles table divided by the vehicle's own observed time: no write per reading, and
late or repeated readings cannot double-count (the counters are cumulative, not events).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# A vehicle needs this much observed time in the soak for its rates to mean anything, and this much
# parked time (not charging) for a parked-drain rate.
MIN_OBSERVED_S = 600.0
MIN_PARKED_S = 900.0


class Signal(StrEnum):
    DTC = "dtc"
    REBOOTS = "reboots"
    LINK_DROPS = "link_drops"
    PARKED_DRAIN = "parked_drain"


@dataclass(frozen=True)
class SignalInfo:
    label: str  # for evidence text and the chart
    unit: str
    # The least worsening that counts (canary minus control, in ``unit``), and the least ratio.
    min_increase: float
    min_ratio: float
    scale: float = 1.0  # rate per hour -> ``unit``


SIGNALS: dict[Signal, SignalInfo] = {
    Signal.DTC: SignalInfo("DTC rate", "% per hour", min_increase=0.5, min_ratio=1.5, scale=100.0),
    Signal.REBOOTS: SignalInfo(
        "unexpected reboots", "% per hour", min_increase=0.5, min_ratio=1.5, scale=100.0
    ),
    Signal.LINK_DROPS: SignalInfo(
        "connectivity drops", "% per hour", min_increase=2.0, min_ratio=1.5, scale=100.0
    ),
    Signal.PARKED_DRAIN: SignalInfo(
        "parked battery drain", "SoC points per hour", min_increase=0.05, min_ratio=1.5
    ),
}

# The vehicles table attribute of each counter (adapters/vehicle_state.py writes them, Vehicle reads them).
ATTRIBUTES = (
    "health_observed_s",
    "health_dtc",
    "health_reboots",
    "health_link_drops",
    "health_parked_s",
    "health_parked_drain",
)


@dataclass(frozen=True, slots=True)
class HealthReading:
    """One read of a vehicle's cumulative counters."""

    observed_s: float
    dtc_count: int
    reboots: int
    link_drops: int
    parked_s: float
    parked_drain_pct: float

    @classmethod
    def of(cls, counters: Any) -> HealthReading:
        """From a ``HealthCounters`` or anything with its attributes (the hot path's decoded struct)."""
        return cls(
            counters.observed_s,
            counters.dtc_count,
            counters.reboots,
            counters.link_drops,
            counters.parked_s,
            counters.parked_drain_pct,
        )

    @property
    def events(self) -> int:
        """Fault codes, reboots and link drops together: a change is worth a vehicle write."""
        return self.dtc_count + self.reboots + self.link_drops

    def values(self) -> tuple[float, ...]:
        return (
            self.observed_s,
            self.dtc_count,
            self.reboots,
            self.link_drops,
            self.parked_s,
            self.parked_drain_pct,
        )

    @classmethod
    def from_values(cls, values: Any) -> HealthReading:
        o, d, r, link, p, drain = tuple(values)
        return cls(float(o), int(d), int(r), int(link), float(p), float(drain))


def soak_rates(start: HealthReading, end: HealthReading) -> dict[Signal, float]:
    """Each signal's rate between two reads, in its unit; NaN where the soak gave too little time.

    A counter that went backwards (a replaced telematics unit) gives a negative rate or no observed
    time at all; the judge's cleaning drops both.
    """
    observed_h = (end.observed_s - start.observed_s) / 3600.0
    parked_h = (end.parked_s - start.parked_s) / 3600.0
    rates = dict.fromkeys(Signal, math.nan)
    if observed_h * 3600.0 >= MIN_OBSERVED_S:
        for signal, delta in (
            (Signal.DTC, end.dtc_count - start.dtc_count),
            (Signal.REBOOTS, end.reboots - start.reboots),
            (Signal.LINK_DROPS, end.link_drops - start.link_drops),
        ):
            rates[signal] = delta / observed_h * SIGNALS[signal].scale
    if parked_h * 3600.0 >= MIN_PARKED_S:
        drained = end.parked_drain_pct - start.parked_drain_pct
        rates[Signal.PARKED_DRAIN] = drained / parked_h * SIGNALS[Signal.PARKED_DRAIN].scale
    return rates


@dataclass(frozen=True)
class SoakBaseline:
    """Each sampled vehicle's counters when a wave's soak started: the updated ones (canary) and the
    comparable ones not updated (control)."""

    canary: dict[str, HealthReading]
    control: dict[str, HealthReading]
