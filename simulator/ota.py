"""The seam for the vehicle-side OTA client (simulator/ota_client.py, written by the campaign work).

Each tick, before a vehicle moves, :class:`FleetSimulation` calls ``ota_client.on_tick(vehicle, t)``
if a client is plugged in. The client may keep its own per-vehicle state in ``vehicle.ota_state``,
change ``vehicle.firmware_version`` once an install succeeds, and return an :class:`OtaEffect`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fleetota_core.domain.telemetry import OtaReport
    from simulator.vehicle import SimVehicle


@dataclass(frozen=True, slots=True)
class OtaEffect:
    """What an OTA job does to a vehicle during one tick."""

    report: OtaReport | None = None  # attached to this tick's telemetry record
    hold_parked: bool = False  # installing: the vehicle must not leave until a later tick
    extra_energy_kwh: float = 0.0  # modules kept awake for the download and install


class OtaClient(Protocol):
    def on_tick(self, vehicle: SimVehicle, t: float) -> OtaEffect | None:
        """Called once per vehicle per tick at the vehicle's reading time ``t`` (epoch seconds)."""
        ...
