"""The fleet snapshot's healing sweep: which segments of the vehicles table are still to be read.

The snapshot is kept up to date from the telemetry processor's deltas. A sweep reads the whole
vehicles table once, in ``segments`` parallel-scan segments spread over several ticks, and folds in
what a lost delta missed (newest reading per VIN wins). Its cursor is saved in the snapshot's header,
so the next tick resumes where this one stopped. A new sweep begins ``every`` after the last one began.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

SWEEP_SEGMENTS = 16
SWEEP_EVERY = timedelta(minutes=30)

StartKey = dict[str, Any] | None


@dataclass(frozen=True)
class SegmentRead:
    """What one bounded read of a segment returned: items (plain values), where to resume (None: done)."""

    items: list[dict[str, Any]]
    next_key: StartKey
    pages: int = 1


@dataclass(frozen=True)
class SweepCursor:
    started_at: datetime
    segments: int
    # (segment, key to resume from or None for its start), in the order they will be read.
    todo: tuple[tuple[int, StartKey], ...] = field(default=())

    @property
    def done(self) -> bool:
        return not self.todo

    @classmethod
    def begin(cls, now: datetime, segments: int = SWEEP_SEGMENTS) -> SweepCursor:
        return cls(now, segments, tuple((s, None) for s in range(segments)))

    def as_header(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "segments": self.segments,
            "todo": [[segment, key] for segment, key in self.todo],
        }

    @classmethod
    def from_header(cls, header: dict[str, Any] | None) -> SweepCursor | None:
        """The saved cursor, or None for a missing or malformed one (then a new sweep begins)."""
        if not header:
            return None
        try:
            started_at = datetime.fromisoformat(str(header["started_at"]))
            segments = int(header["segments"])
            todo = tuple((int(s), k if isinstance(k, dict) else None) for s, k in header["todo"])
        except (KeyError, TypeError, ValueError):
            return None
        if started_at.tzinfo is None or segments < 1 or any(not 0 <= s < segments for s, _ in todo):
            return None
        return cls(started_at, segments, todo)


def sweep_to_work_on(
    cursor: SweepCursor | None, last_began: datetime | None, now: datetime, every: timedelta = SWEEP_EVERY
) -> SweepCursor | None:
    """The sweep this tick works on: the one in progress, else a new one once ``every`` has passed
    since the last began (or if none ever did), else None."""
    if cursor is not None and not cursor.done:
        return cursor
    began = cursor.started_at if cursor is not None else last_began
    if began is None or now - began >= every:
        return SweepCursor.begin(now, cursor.segments if cursor is not None else SWEEP_SEGMENTS)
    return None
