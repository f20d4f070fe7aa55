"""The simulator controls the Simulator page and the sidebar use; the process itself is local-stack code."""

from __future__ import annotations

from fleetota_core.local.simulator_process import (
    MAX_VEHICLES,
    SimulatorOptions,
    SimulatorStatus,
    simulator_status,
    start_simulator,
    stop_simulator,
)

# Re-exported so that pages depend on fleetota_core.views only (tests/unit/test_layering.py).
__all__ = [
    "MAX_VEHICLES",
    "SimulatorOptions",
    "SimulatorStatus",
    "simulator_status",
    "start_simulator",
    "stop_simulator",
]
