"""The parsed fleet, shared by every dashboard session and replaced in the background.

The update manager rewrites the fleet snapshot every minute, and at 1,000,000 vehicles downloading
and parsing it takes about 10 s. Blocking a page on that once a minute would make the dashboard slow
for whoever comes first after each tick, so the store keeps serving the fleet it has while one
background thread reads the newer version. Only the very first read (nothing to show yet) blocks.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from fleetota_core.views.backend import BACKEND_ERRORS

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

logger = logging.getLogger(__name__)


class FleetStore:
    """The newest fleet frame read so far and its version; at most one read in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first_read = threading.Lock()
        self._served: tuple[str, pd.DataFrame] | None = None
        self._reading: str | None = None
        self.refreshes = 0  # background reads started, for tests and logs

    def get(self, version: str, read: Callable[[], pd.DataFrame]) -> tuple[str, pd.DataFrame]:
        """``(version, frame)``: the fleet at ``version``, or the one served so far while it is read.

        The frame is a shallow copy: with pandas' copy-on-write a caller's change never reaches the
        shared frame.
        """
        with self._lock:
            served = self._served
            if served is not None and served[0] != version and self._reading is None:
                self._reading = version
                self.refreshes += 1
                threading.Thread(target=self._refresh, args=(version, read), daemon=True).start()
        if served is None:
            served = self._read_first(version, read)
        return served[0], served[1].copy(deep=False)

    def _read_first(self, version: str, read: Callable[[], pd.DataFrame]) -> tuple[str, pd.DataFrame]:
        with self._first_read:  # every session waiting for the first read shares it
            if self._served is None:
                frame = read()
                with self._lock:
                    self._served = (version, frame)
            return self._served

    def _refresh(self, version: str, read: Callable[[], pd.DataFrame]) -> None:
        frame = None
        try:
            frame = read()
        except BACKEND_ERRORS as exc:  # the fleet served so far stays; the next page run tries again
            logger.warning(
                "could not read fleet version %s, still serving the previous one: %s", version, exc
            )
        finally:
            with self._lock:  # one step, so no page run sees neither the new frame nor a read in flight
                if frame is not None:
                    self._served = (version, frame)
                self._reading = None
