"""One tick's share of the snapshot's healing sweep: a few segments read in parallel, within a budget.

Each tick reads up to ``page_budget`` pages (1 MB each on DynamoDB, about 2,000 vehicles), at most
``parallel`` segments at a time, each given an equal share of what is left of the budget, and saves
where each unfinished segment stopped. At 1,000,000 vehicles (about 530 pages) a sweep takes 17 ticks;
a small fleet is swept in one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from fleetota_core.domain.fleet_sweep import SegmentRead, StartKey, SweepCursor

# 32 pages (about 60,000 vehicles) add about 4.5 CPU seconds to a tick at 1M vehicles, so a tick with
# its sweep share still fits the update manager (128 added 17.5: docs/benchmarks.md); a sweep of 1M
# vehicles (about 530 pages) then takes 17 ticks, within SWEEP_EVERY.
SWEEP_PAGES_PER_TICK = 32
SWEEP_PARALLEL = 4
SWEEP_PAGES_PER_READ = 8  # with a sink: about 15,000 items a read


class VehicleSegments(Protocol):
    def read(self, segment: int, segments: int, start_key: StartKey, max_pages: int) -> SegmentRead:
        """Up to ``max_pages`` pages of one parallel-scan segment of the vehicles table."""
        ...


@dataclass
class SweepStep:
    cursor: SweepCursor
    items: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0


def sweep_step(
    cursor: SweepCursor,
    table: VehicleSegments,
    page_budget: int = SWEEP_PAGES_PER_TICK,
    parallel: int = SWEEP_PARALLEL,
    sink: Callable[[list[dict[str, Any]]], None] | None = None,
) -> SweepStep:
    """Read this tick's share of ``cursor``'s segments; the items read and the cursor to save.

    With a ``sink``, each read's items go to it as they come instead of into ``items``, and a read
    is at most ``SWEEP_PAGES_PER_READ`` pages, so the step holds a few thousand items at a time, not
    its whole share (about 60,000 at 32 pages).
    """
    todo = list(cursor.todo)
    step = SweepStep(cursor)
    most = SWEEP_PAGES_PER_READ if sink is not None else page_budget
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        while todo and step.pages < page_budget:
            batch, todo = todo[:parallel], todo[parallel:]
            pages = max(1, min(most, (page_budget - step.pages) // len(batch)))
            reads = list(pool.map(lambda t, n=pages: table.read(t[0], cursor.segments, t[1], n), batch))
            unfinished = []
            for (segment, _), read in zip(batch, reads, strict=True):
                if sink is not None:
                    sink(read.items)
                else:
                    step.items.extend(read.items)
                step.pages += read.pages
                if read.next_key is not None:
                    unfinished.append((segment, read.next_key))
            del reads
            # A segment cut short goes on first (next tick, or the next read when only the read's
            # size cut it), so segments finish one after another.
            todo = unfinished + todo
            if unfinished and pages < most:
                break
    step.cursor = replace(cursor, todo=tuple(todo))
    return step
