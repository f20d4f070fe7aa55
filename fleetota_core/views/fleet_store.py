"""The parsed fleet, shared by every dashboard session and replaced in the background.

The update manager rewrites the fleet snapshot every minute, and at 1,000,000 vehicles downloading
and parsing it takes about 10 s. Blocking a page on that once a minute would make the dashboard slow
for whoever comes first after each tick, so the store keeps serving the fleet it has while one
background thread reads the newer version. That holds while someone is watching: the served fleet
was the latest version at most ``max_stale_s`` ago. After the dashboard sat idle longer, the fleet it
holds may be any age (a visitor coming back would first see a fleet of an hour ago), so that read
blocks, as the very first one does. So does the read of a small fleet (under ``background_from_rows``
rows served): it takes well under a second, and a young stack's first vehicles show on the page that
asks for them instead of the next one.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from fleetota_core.views.backend import BACKEND_ERRORS

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

logger = logging.getLogger(__name__)

MAX_STALE_S = 60.0  # the update manager's schedule on AWS: a watched fleet is at most a tick behind
BACKGROUND_FROM_ROWS = 10_000  # a snapshot this size reads in about 0.2 s; 1,000,000 in about 10 s


class FleetStore:
    """The newest fleet frame read so far and its version; at most one read in flight."""

    def __init__(
        self,
        max_stale_s: float = MAX_STALE_S,
        clock: Callable[[], float] = time.monotonic,
        background_from_rows: int = BACKGROUND_FROM_ROWS,
    ) -> None:
        self.max_stale_s = max_stale_s
        self.background_from_rows = background_from_rows
        self.clock = clock
        self._lock = threading.Lock()
        self._blocking_read = threading.Lock()
        self._served: tuple[str, pd.DataFrame] | None = None
        self._current_at = 0.0  # when the served fleet was last known to be the latest version
        self._read_at = 0.0  # when the read of the served fleet started: an older read never replaces it
        self._reading: str | None = None
        self.refreshes = 0  # background reads started, for tests and logs

    def get(self, version: str, read: Callable[[], pd.DataFrame]) -> tuple[str, pd.DataFrame]:
        """``(version, frame)``: the fleet at ``version``, or the one served so far while it is read.

        The frame is a shallow copy: with pandas' copy-on-write a caller's change never reaches the
        shared frame.
        """
        now = self.clock()
        with self._lock:
            served = self._served
            if served is not None and served[0] == version:
                self._current_at = now
            elif served is not None and now - self._current_at > self.max_stale_s:
                served = None  # too old to show: read it now
            elif served is not None and len(served[1]) < self.background_from_rows:
                served = None  # a small fleet: read it now, it is quick
            elif served is not None and self._reading is None:
                self._reading = version
                self.refreshes += 1
                threading.Thread(target=self._refresh, args=(version, read), daemon=True).start()
        if served is None:
            served = self._read_now(version, read)
        return served[0], served[1].copy(deep=False)

    def _read_now(self, version: str, read: Callable[[], pd.DataFrame]) -> tuple[str, pd.DataFrame]:
        with self._blocking_read:  # every session waiting for this version shares one read
            if self._served is None or self._served[0] != version:
                started = self.clock()
                frame = read()
                self._serve(version, frame, started)
            served = self._served
        assert served is not None  # set by this read, or by a newer one
        return served

    def _serve(self, version: str, frame: pd.DataFrame, started: float) -> None:
        with self._lock:
            if self._served is None or started >= self._read_at:
                self._served, self._current_at, self._read_at = (version, frame), started, started

    def _refresh(self, version: str, read: Callable[[], pd.DataFrame]) -> None:
        frame = None
        started = self.clock()
        try:
            frame = read()
        except BACKEND_ERRORS as exc:  # the fleet served so far stays; the next page run tries again
            logger.warning(
                "could not read fleet version %s, still serving the previous one: %s", version, exc
            )
        finally:
            if frame is not None:
                self._serve(version, frame, started)
            with self._lock:
                self._reading = None
