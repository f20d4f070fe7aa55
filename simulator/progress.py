"""The live progress line and the end-of-run summary."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

from simulator.record import iso_ts

if TYPE_CHECKING:
    from simulator.simulation import FleetSimulation


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def status_line(sim: FleetSimulation) -> str:
    up = sim.uploader
    return (
        f"sim {iso_ts(sim.t)[:19]}Z | tick {sim.ticks} | records {up.records_sent:,} | "
        f"objects {up.objects_sent:,} | {_size(up.bytes_sent)} | "
        f"online {sim.online:,}/{len(sim.vehicles):,} | held offline {sim.held:,}"
    )


class Progress:
    """Rewrites one line on a terminal; prints a line every ``every_s`` seconds into a log."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 5.0, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = 0.25 if self.tty else every_s
        self.quiet = quiet
        self._last = 0.0
        self._line = ""

    def update(self, sim: FleetSimulation, force: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or (not force and now - self._last < self.every_s):
            return
        line = status_line(sim)
        if line == self._line:
            return  # e.g. the forced final update right after the last tick's: a log gets it once
        self._last, self._line = now, line
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
