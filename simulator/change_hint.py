"""Report by exception: whether a reading is a material change, as a telematics unit decides it.

A vehicle keeps the facts of the last reading it sent with ``changed: true`` and compares each new
reading's with them by the platform's own rule (``fleetota_core.domain.enrichment.material_change``),
so the processor can write its state without reading it back first (docs/telemetry.md). A reading
with an OTA report is a change anyway, and a keyframe at least every ``KEYFRAME_S`` of the vehicle's
time heals a lost change record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleetota_core.domain.enrichment import MaterialFacts
from fleetota_core.domain.telemetry import NetworkType
from fleetota_core.domain.vehicle import battery_category

if TYPE_CHECKING:
    import random
    from collections.abc import Iterable

    from simulator.vehicle import SimVehicle

KEYFRAME_S = 6 * 3600.0


def drive_state(v: SimVehicle) -> str:
    return "driving" if v.driving else ("charging" if v.charging else "parked")


def facts(v: SimVehicle) -> MaterialFacts:
    """What the reading of ``v`` says, rounded as the record writes it (so both sides agree)."""
    health = v.health
    return MaterialFacts(
        drive_state(v),
        v.network is not NetworkType.NONE,
        v.firmware_version,
        battery_category(round(v.soc, 2)).value,
        v.charging,
        health.dtc_count + health.reboots + health.link_drops,
        round(v.lat, 6),
        round(v.lon, 6),
    )


def changed(v: SimVehicle, t: float, ota_report: bool) -> bool:
    """Whether the reading of ``v`` at ``t`` (simulated seconds) is flagged ``changed``; if so, its
    facts become the ones the next readings are compared with."""
    now, before = facts(v), v.reported
    if before is None and v.reported_at < 0 and not ota_report:
        # A known fleet's first reading (see assume_reported): the reference, as if just reported.
        v.reported, v.reported_at = now, t + v.reported_at
        return False
    if (
        before is not None
        and not ota_report
        and t - v.reported_at < KEYFRAME_S
        and not now.differs_from(before)
    ):
        return False
    v.reported, v.reported_at = now, t
    return True


def assume_reported(vehicles: Iterable[SimVehicle], rng: random.Random) -> None:
    """The platform already holds these vehicles' state (``--fleet-known``): each vehicle's first
    reading is taken as already reported, so only a real change after it is flagged; the keyframes
    fall at random over the next ``KEYFRAME_S`` rather than all at once. (A negative ``reported_at``
    marks the vehicle until that first reading, whose facts the simulation sets on its first step.)"""
    for v in vehicles:
        v.reported, v.reported_at = None, -rng.uniform(1.0, KEYFRAME_S)
