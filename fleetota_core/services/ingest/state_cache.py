"""A per-process cache of stored vehicle states in front of the vehicles table.

A warm processor sees the same vehicles every few seconds; reading each one back before deciding
whether its reading is material would cost a read per record. The cache remembers what this
process last read or wrote, for ``ttl`` seconds. If another process wrote a vehicle meanwhile, a
decision may use an older state than the table's: at worst a redundant conditional write (refused if
stale) or a material change held back until the entry expires. Writes stay conditional on (ts, seq),
so a vehicle never moves backwards either way.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from fleetota_core.domain.enrichment import StoredState

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from fleetota_core.domain.enrichment import VehicleState
    from fleetota_core.services.ingest.ports import VehicleStates, VehicleWrite

DEFAULT_TTL_S = 60.0
DEFAULT_MAX_VEHICLES = 250_000  # ~60 MB at most; a 1 GB Lambda has room


class CachedVehicleStates:
    """Wraps a ``VehicleStates`` port; same interface."""

    def __init__(
        self,
        inner: VehicleStates,
        ttl: float = DEFAULT_TTL_S,
        max_vehicles: int = DEFAULT_MAX_VEHICLES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.ttl = ttl
        self.max_vehicles = max_vehicles
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, StoredState | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _remember(self, vin: str, state: StoredState | None, at: float) -> None:
        known = self._entries.get(vin, (0.0, None))[1]
        # Objects may be processed concurrently: never let an older state replace a newer one.
        if (
            known is not None
            and state is not None
            and (state.last_ts_ms, state.last_seq)
            < (
                known.last_ts_ms,
                known.last_seq,
            )
        ):
            return
        self._entries[vin] = (at, state)
        self._entries.move_to_end(vin)
        while len(self._entries) > self.max_vehicles:
            self._entries.popitem(last=False)

    def get_many(self, vins: list[str]) -> dict[str, StoredState]:
        now = self.clock()
        found: dict[str, StoredState] = {}
        missing: list[str] = []
        with self._lock:
            for vin in vins:
                entry = self._entries.get(vin)
                if entry is None or now - entry[0] > self.ttl:
                    missing.append(vin)
                elif entry[1] is not None:
                    found[vin] = entry[1]
        self.hits += len(vins) - len(missing)
        self.misses += len(missing)
        if missing:
            fetched = self.inner.get_many(missing)
            found.update(fetched)
            with self._lock:
                for vin in missing:
                    # "Never seen" is remembered too, so a new vehicle costs one read, not one per object.
                    self._remember(vin, fetched.get(vin), now)
        return found

    def put_many(self, states: list[VehicleState]) -> tuple[int, int]:
        written, lost = self.inner.put_many(states)
        now = self.clock()
        with self._lock:
            for state in states:
                # Lost to a newer state: forget it, so the next object reads the table's version.
                self._entries.pop(state.vin, None)
            if not lost:
                for state in states:
                    self._remember(state.vin, StoredState.of(state), now)
        return written, lost

    def update_many(self, states: list[VehicleState]) -> tuple[int, int]:
        """Written without a read: what the table now holds (its OTA status) is not known here, so
        the written vehicles are forgotten and the next object that needs one reads it."""
        result = self.inner.update_many(states)
        with self._lock:
            for state in states:
                self._entries.pop(state.vin, None)
        return result

    def commit_items(self, writes: Sequence[VehicleWrite]) -> Sequence[object]:
        return self.inner.commit_items(writes)

    def committed(self, written: Sequence[VehicleWrite], refused: Sequence[VehicleWrite]) -> None:
        """As ``put_many`` and ``update_many`` do after their writes: a whole item written is
        remembered; an update (its OTA status is the table's) and a refused write are forgotten."""
        self.inner.committed(written, refused)
        now = self.clock()
        with self._lock:
            for write in (*written, *refused):
                self._entries.pop(write.state.vin, None)
            for write in written:
                if write.whole:
                    self._remember(write.state.vin, StoredState.of(write.state), now)
