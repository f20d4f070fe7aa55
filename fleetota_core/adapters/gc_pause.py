"""The cyclic garbage collector paused while a fleet-sized read or write handles its million objects.

Targeting a 1,000,000-vehicle fleet keeps a million candidates (or vehicles, for the preview) and
registrations alive while it reads, and writing their deployments makes a million items that outlive
the young generations; each full collection that triggers walks all of them, and none is ever garbage
(they hold no cycles). Measured at 1M: 20 full and 1,200 middle passes, about a quarter of a campaign
creation's time. Reference counting still frees everything as usual; only cycles wait until the
pause ends. The pause is process-wide (the collector has no other scope), nests, and ends when the
last reader is done.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

_lock = threading.Lock()
_readers = 0
_was_enabled = True


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection inside the block (nor in other threads meanwhile); as it was after."""
    global _readers, _was_enabled
    with _lock:
        if _readers == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _readers += 1
    try:
        yield
    finally:
        with _lock:
            _readers -= 1
            if _readers == 0 and _was_enabled:
                gc.enable()
