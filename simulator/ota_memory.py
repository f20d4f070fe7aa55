"""What each simulated vehicle remembers about OTA across simulator restarts.

A real ECU keeps its installed version and its anti-replay record (:class:`OtaHistory`) in flash.
The simulator keeps them for the whole fleet in one JSON file, replaced atomically; a restarted
simulator puts each vehicle back on the firmware it had installed and refuses the jobs it had used.
Writes are batched: :meth:`flush` writes at most once per ``min_interval_s`` (and always on close).
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

from fleetota_core.domain.job_document import OtaHistory
from fleetota_core.errors import ConfigurationError

if TYPE_CHECKING:
    from pathlib import Path

    from simulator.vehicle import SimVehicle

SCHEMA = 1


class VehicleOtaMemory:
    """Per-VIN installed firmware and OTA history; in memory only when ``path`` is None."""

    def __init__(self, path: Path | None = None, min_interval_s: float = 1.0) -> None:
        self.path = path
        self.min_interval_s = min_interval_s
        self._vehicles: dict[str, dict[str, Any]] = self._load(path) if path is not None else {}
        self._restored: set[str] = set()
        self._dirty = False
        self._written_at = 0.0

    @staticmethod
    def _load(path: Path) -> dict[str, dict[str, Any]]:
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
            vehicles = data["vehicles"] if data.get("schema") == SCHEMA else None
            if not isinstance(vehicles, dict):
                raise ValueError(f"schema {data.get('schema')!r}, expected {SCHEMA}")
            for record in vehicles.values():
                OtaHistory.from_json(record["history"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # Starting with an empty memory would accept every replay again: refuse instead.
            raise ConfigurationError(
                f"vehicle OTA state {path} is unreadable ({exc}); move it away to start the fleet afresh"
            ) from exc
        return vehicles

    def history(self, vin: str) -> OtaHistory:
        record = self._vehicles.get(vin)
        return OtaHistory.from_json(record["history"]) if record else OtaHistory()

    def remember(self, vehicle: SimVehicle, history: OtaHistory) -> None:
        self._vehicles[vehicle.vin] = {
            "firmware_version": vehicle.firmware_version,
            "history": history.to_json(),
        }
        self._dirty = True

    def restore(self, vehicle: SimVehicle) -> None:
        """Once per vehicle: put it back on the firmware it had installed before a restart."""
        if vehicle.vin in self._restored:
            return
        self._restored.add(vehicle.vin)
        record = self._vehicles.get(vehicle.vin)
        if record and record.get("firmware_version"):
            vehicle.firmware_version = record["firmware_version"]

    def flush(self, force: bool = False) -> bool:
        """Write the file if anything changed (and the last write is old enough, unless ``force``)."""
        if self.path is None or not self._dirty:
            return False
        if not force and time.monotonic() - self._written_at < self.min_interval_s:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        partial.write_text(json.dumps({"schema": SCHEMA, "vehicles": self._vehicles}))
        partial.replace(self.path)
        self._dirty, self._written_at = False, time.monotonic()
        return True
