"""One tick's share of the snapshot's healing sweep: a few segments read in parallel, within a budget.

Each tick reads up to ``page_budget`` pages (1 MB each on DynamoDB, about 2,000 vehicles), at most
``parallel`` segments at a time, each given an equal share of what is left of the budget, and saves
where each unfinished segment stopped. At 1,000,000 vehicles (about 500 pages) a sweep takes about 5 ticks;
a small fleet is swept in one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fleetota_core.domain.fleet_sweep import SegmentRead, StartKey, SweepCursor

SWEEP_PAGES_PER_TICK = 128
SWEEP_PARALLEL = 4


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
) -> SweepStep:
    """Read this tick's share of ``cursor``'s segments; the items read and the cursor to save."""
    todo = list(cursor.todo)
    step = SweepStep(cursor)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        while todo and step.pages < page_budget:
            batch, todo = todo[:parallel], todo[parallel:]
            pages = max(1, (page_budget - step.pages) // len(batch))
            reads = list(pool.map(lambda t, n=pages: table.read(t[0], cursor.segments, t[1], n), batch))
            unfinished = []
            for (segment, _), read in zip(batch, reads, strict=True):
                step.items.extend(read.items)
                step.pages += read.pages
                if read.next_key is not None:
                    unfinished.append((segment, read.next_key))
            # A segment cut short goes on first next tick, so segments finish one after another.
            todo = unfinished + todo
            if unfinished:
                break
    step.cursor = replace(cursor, todo=tuple(todo))
    return step
