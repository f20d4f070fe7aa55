"""Paces a FleetSimulation against the wall clock and stops it cleanly."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from simulator.progress import Progress
    from simulator.simulation import FleetSimulation


@dataclass
class RunReport:
    ticks: int
    wall_s: float
    cpu_s: float
    max_lag_s: float  # worst delay of a tick behind its wall-clock due time
    final_lag_s: float
    interrupted: bool

    def keeps_up(self, tick_wall_s: float) -> bool:
        """Real time is kept if no tick finished a whole tick late (lag never accumulates)."""
        return self.max_lag_s < tick_wall_s


def run(
    sim: FleetSimulation,
    *,
    speed: float,
    ticks: int | None = None,
    duration_s: float | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    on_idle: Callable[[float], None] | None = None,
    flush_s: float | None = None,
) -> RunReport:
    """Step ``sim`` until ``ticks`` intervals, ``duration_s`` wall seconds, or ``stop`` is set.

    ``speed`` is simulated seconds per wall second; 0 runs as fast as the CPU allows. Tick k is due
    when the wall clock has advanced ``k * interval / speed`` since the start. ``on_idle(seconds)``
    may use the wait between ticks (e.g. to receive OTA job notifications), in whole seconds of at
    most 2; shorter waits, or all of them without ``on_idle``, just sleep.

    ``flush_s`` (wall seconds): a reading waits at most about this long before its upload, as a
    telematics unit sending every few seconds would. Each interval is stepped in phase slices of
    ``flush_s / 2`` (a part-filled object may wait one more slice); ``None`` or speed 0 steps
    whole intervals, each uploaded at its end.
    """
    stop = stop or threading.Event()
    wall0, cpu0 = time.monotonic(), time.process_time()
    tick_wall = sim.interval / speed if speed > 0 else 0.0
    max_lag = lag = 0.0
    done = 0
    parts = max(1, math.ceil(2 * tick_wall / flush_s)) if flush_s and tick_wall else 1
    while not stop.is_set() and (ticks is None or done < ticks):
        due = wall0 + (done + 1) * tick_wall
        if duration_s is not None and max(due, time.monotonic()) - wall0 > duration_s:
            break
        for part in range(parts):
            part_due = wall0 + (done + (part + 1) / parts) * tick_wall
            while (wait := part_due - time.monotonic()) > 0 and not stop.is_set():
                if on_idle is not None and wait >= 1.0:
                    # Whole seconds (SQS long polls count in seconds), short enough to notice a stop soon.
                    on_idle(float(min(int(wait), 2)))
                else:
                    stop.wait(min(wait, 0.5))
            if stop.is_set():
                break
            sim.step_part(part, parts)
        if stop.is_set():
            break
        done += 1
        lag = max(0.0, time.monotonic() - due) if tick_wall else 0.0
        max_lag = max(max_lag, lag)
        if progress is not None:
            progress.update(sim)
    if progress is not None:
        progress.update(sim, force=True)
        progress.done()
    return RunReport(
        ticks=done,
        wall_s=time.monotonic() - wall0,
        cpu_s=time.process_time() - cpu0,
        max_lag_s=max_lag,
        final_lag_s=lag,
        interrupted=stop.is_set(),
    )
