"""The processor's registry cache: a day of registry answers, kept current by the change feed.

SQS spreads objects at random over the processors and an object holds ~1,000 distinct vehicles, so
every processor sees every vehicle. Answers kept 5 minutes made each of ~10 processors re-read each
vehicle every 5 minutes (issue #16). Now a registered vehicle's answer is kept ``REGISTERED_TTL_S``
(24 h), in a bounded LRU of packed entries (``registry_entries.py``), and the registry change feed
(``domain/registry_changes.py``) is read at most once per ``FEED_READ_INTERVAL_S`` per process: a
registration changed since the previous read is evicted (a new epoch evicts everything), so a
retirement, a new key or an edited attribute reaches every warm processor within ~10 s. "Not
registered" is kept ``UNKNOWN_TTL_S`` (new VINs are not in the feed). A read the cache has to make
anyway is filled up to ``BATCH_GET_KEYS`` with the object's answers due within ``TOP_UP_AHEAD_S``:
each processor re-reads each vehicle about once a day, and this makes those reads come 100 to a
request instead of one or two scattered over nearly every object. A failing signature re-reads
its VIN at once (``refresh_many``), at most once per VIN per ``REFRESH_MIN_S``. ``clear`` forgets
everything (the stack's data was wiped). A feed read that fails raises, like a registry read: the
object fails and SQS retries it, rather than going on with answers that may be stale.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from typing import TYPE_CHECKING

from fleetota_core.services.ingest.registry_entries import PackedRegistrations

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from fleetota_core.domain.registry_changes import RegistryChanges
    from fleetota_core.domain.vehicle_identity import RegisteredVehicle
    from fleetota_core.services.ingest.ports import RegistryChangeFeed, VehicleRegistry

REGISTERED_TTL_S = 24 * 3600.0  # under the feed's retention (25 h): no change is pruned unseen
UNKNOWN_TTL_S = 30.0
REFRESH_MIN_S = 30.0
FEED_READ_INTERVAL_S = 10.0
# A 1M fleet plus room; ~345 bytes an entry (registry_entries.py): about 380 MB when full.
MAX_VEHICLES = 1_100_000
BATCH_GET_KEYS = 100  # one BatchGetItem
TOP_UP_AHEAD_S = 4 * 3600.0  # re-read at most this early: at most ~20 % more keys read, 100 a request
_EVICTIONS_KEPT = 16


class RegistryCache:
    """Wraps a ``VehicleRegistry`` port (same interface) and follows ``changes``."""

    def __init__(
        self,
        inner: VehicleRegistry,
        changes: RegistryChangeFeed,
        ttl_s: float = REGISTERED_TTL_S,
        unknown_ttl_s: float = UNKNOWN_TTL_S,
        feed_interval_s: float = FEED_READ_INTERVAL_S,
        max_vehicles: int = MAX_VEHICLES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.changes = changes
        self.ttl_s = ttl_s
        self.unknown_ttl_s = unknown_ttl_s
        self.feed_interval_s = feed_interval_s
        self.max_vehicles = max_vehicles
        self.clock = clock
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._packed = PackedRegistrations()
        self._refreshed_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._feed_lock = threading.Lock()
        self._feed: RegistryChanges | None = None
        self._feed_read_at: float | None = None
        # Evictions by number, so a table answer read before one is not stored after it (stale).
        self._evicted = 0
        self._evictions: deque[tuple[int, frozenset[str] | None]] = deque(maxlen=_EVICTIONS_KEPT)
        self.lookups = 0  # VINs asked of the table, for the cost checks
        self.feed_reads = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._drop_all()
            self._refreshed_at.clear()
            self._feed = None
            self._feed_read_at = None

    def _drop_all(self) -> None:
        self._entries.clear()
        self._packed.clear()
        self._evicted += 1
        self._evictions.append((self._evicted, None))

    def _follow_feed(self, now: float) -> None:
        """Read the change feed if ``feed_interval_s`` passed since the last read; evict what changed."""
        if self._feed_read_at is not None and now - self._feed_read_at < self.feed_interval_s:
            return
        if not self._feed_lock.acquire(blocking=False):
            return  # another thread of this process is reading it now
        try:
            if self._feed_read_at is not None and now - self._feed_read_at < self.feed_interval_s:
                return
            feed = self.changes.read()
            self.feed_reads += 1
            with self._lock:
                changed = feed.evictions(self._feed)
                if changed is None:
                    self._drop_all()
                elif changed:
                    for vin in changed:
                        self._entries.pop(vin, None)
                    self._evicted += 1
                    self._evictions.append((self._evicted, frozenset(changed)))
                if self._feed is None or changed is None or feed.version > self._feed.version:
                    self._feed = feed
                self._feed_read_at = now
        finally:
            self._feed_lock.release()

    def _evicted_since(self, mark: int) -> frozenset[str] | None:
        """The VINs evicted after ``mark``; None if everything was (or too much to tell)."""
        if mark == self._evicted:
            return frozenset()
        later = [vins for number, vins in self._evictions if number > mark]
        if len(later) < self._evicted - mark or any(vins is None for vins in later):
            return None
        return frozenset().union(*(vins for vins in later if vins is not None))

    def _store(self, asked: list[str], found: dict[str, RegisteredVehicle], now: float, mark: int) -> None:
        self.lookups += len(asked)
        with self._lock:
            stale = self._evicted_since(mark)
            if stale is None:
                return  # the table was read before everything was dropped: answer, do not keep
            for vin in asked:
                if vin in stale:
                    continue
                vehicle = found.get(vin)
                ttl = self.ttl_s if vehicle is not None else self.unknown_ttl_s
                self._entries[vin] = self._packed.pack(vehicle, now + ttl)
                self._entries.move_to_end(vin)
            while len(self._entries) > self.max_vehicles:
                self._entries.popitem(last=False)

    def get_many(self, vins: Iterable[str]) -> dict[str, RegisteredVehicle]:
        vins = set(vins)
        now = self.clock()
        self._follow_feed(now)
        answer: dict[str, RegisteredVehicle] = {}
        missing: list[str] = []
        due_soon: list[tuple[float, str]] = []
        soon, expires_at = now + TOP_UP_AHEAD_S, self._packed.expires_at
        with self._lock:
            mark = self._evicted
            entries, unpack, used = self._entries, self._packed.unpack, self._entries.move_to_end
            for vin in vins:
                entry = entries.get(vin)
                fresh, vehicle = (False, None) if entry is None else unpack(vin, entry, now)
                if not fresh or entry is None:
                    missing.append(vin)
                    continue
                used(vin)
                if vehicle is not None:
                    answer[vin] = vehicle
                    if (expiry := expires_at(entry)) <= soon:
                        due_soon.append((expiry, vin))
        if missing:
            room = -len(missing) % BATCH_GET_KEYS
            topped_up = [vin for _, vin in sorted(due_soon)[:room]]
            for vin in topped_up:
                del answer[vin]  # the table's answer, read now, is the one to give
            found = self.inner.get_many(missing + topped_up)
            self._store(missing + topped_up, found, now, mark)
            answer.update(found)
        return answer

    def refresh_many(self, vins: Iterable[str]) -> dict[str, RegisteredVehicle]:
        """Re-read ``vins`` from the table unless this process did so within REFRESH_MIN_S."""
        vins = set(vins)
        now = self.clock()
        answer: dict[str, RegisteredVehicle] = {}
        with self._lock:
            mark = self._evicted
            due = [v for v in vins if now - self._refreshed_at.get(v, -REFRESH_MIN_S) >= REFRESH_MIN_S]
            self._refreshed_at.update(dict.fromkeys(due, now))
            for vin in vins.difference(due):
                entry = self._entries.get(vin)
                vehicle = None if entry is None else self._packed.unpack(vin, entry, -math.inf)[1]
                if vehicle is not None:
                    answer[vin] = vehicle
        if due:
            found = self.inner.refresh_many(due)
            self._store(due, found, now, mark)
            answer.update(found)
        return answer
