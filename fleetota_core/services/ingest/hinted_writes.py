"""At most one hinted vehicle write per vehicle per window, per processor instance (the abuse bound).

A vehicle that reports by exception says itself when a reading is a material change (``changed``),
and the processor then writes without reading the stored state. A vehicle that flags every reading
would turn that into a write per record; this bound keeps it to one per ``window_s`` in each
processor instance. A refused change is owed: the vehicle's next hinted reading that this instance
sees after the window is written, changed or not. The snapshot delta carries every reading anyway.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

DEFAULT_WINDOW_S = 30.0
DEFAULT_MAX_VEHICLES = 100_000  # about 15 MB; a forgotten vehicle merely gets one write early


class HintedWriteBound:
    """Remembers when this instance last wrote each vehicle on a hint, and which changes it owes."""

    def __init__(self, window_s: float = DEFAULT_WINDOW_S, max_vehicles: int = DEFAULT_MAX_VEHICLES) -> None:
        self.window_s = window_s
        self.max_vehicles = max_vehicles
        # vin -> (epoch seconds of the last hinted write, a refused change is owed)
        self._vehicles: OrderedDict[str, tuple[float, bool]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._vehicles)

    def clear(self) -> None:
        with self._lock:
            self._vehicles.clear()

    def __contains__(self, vin: object) -> bool:
        """Whether this instance wrote (or refused) a hinted change of ``vin`` and still remembers it."""
        return vin in self._vehicles

    def owes(self, vin: str) -> bool:
        """Whether a change of ``vin`` was refused and not written since."""
        entry = self._vehicles.get(vin)
        return entry is not None and entry[1]

    def admit(self, vin: str, at: float) -> bool:
        """Whether a hinted write of ``vin`` may go at ``at`` (epoch seconds); True counts as the write.

        A refused one is remembered as owed (see :meth:`owes`).
        """
        with self._lock:
            entry = self._vehicles.get(vin)
            if entry is not None and at - entry[0] < self.window_s:
                self._vehicles[vin] = (entry[0], True)
                return False
            self._vehicles[vin] = (at, False)
            self._vehicles.move_to_end(vin)
            while len(self._vehicles) > self.max_vehicles:
                self._vehicles.popitem(last=False)
            return True

    def forget(self, vins: list[str]) -> None:
        """Undo :meth:`admit` for writes that were never made (their commit failed), so the retry
        writes them rather than deferring them as a second write within the window."""
        with self._lock:
            for vin in vins:
                self._vehicles.pop(vin, None)
