"""The fleet snapshot's healing sweep: bounded work per tick, resumed from the saved cursor."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

from fleetota_core.domain.fleet_sweep import SWEEP_EVERY, SegmentRead, SweepCursor, sweep_to_work_on
from fleetota_core.services.fleet.sweep import SWEEP_PAGES_PER_READ, sweep_step

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class FakeSegments:
    """The vehicles table in memory, split into segments as DynamoDB's parallel scan would."""

    def __init__(self, vins: list[str], per_page: int) -> None:
        self.vins = vins
        self.per_page = per_page
        self.pages_read = 0

    def read(self, segment, segments, start_key, max_pages) -> SegmentRead:
        mine = [v for v in self.vins if zlib.crc32(v.encode()) % segments == segment]
        start = start_key["n"] if start_key else 0
        stop = min(len(mine), start + max_pages * self.per_page)
        pages = max(1, -(-(stop - start) // self.per_page))
        self.pages_read += pages
        return SegmentRead(
            [{"vin": v} for v in mine[start:stop]], {"n": stop} if stop < len(mine) else None, pages
        )


def test_a_large_table_is_swept_over_several_ticks_within_the_page_budget_and_every_vehicle_once():
    # Given 20,000 vehicles at 100 a page (200 pages) and a budget of 40 pages a tick
    table = FakeSegments([f"V{n:07d}" for n in range(20_000)], per_page=100)
    cursor, seen, ticks = SweepCursor.begin(NOW, segments=8), [], 0
    while not cursor.done:
        step = sweep_step(cursor, table, page_budget=40, parallel=4)
        # Then no tick reads more than its budget (plus one partial page per segment)
        assert step.pages <= 40 + 4
        seen += [item["vin"] for item in step.items]
        cursor = step.cursor
        ticks += 1
        assert ticks < 20
    assert sorted(seen) == table.vins  # each vehicle read once, none missed
    assert 5 <= ticks <= 8


def test_a_small_fleet_is_swept_in_one_tick():
    table = FakeSegments([f"V{n:07d}" for n in range(30)], per_page=100)
    step = sweep_step(SweepCursor.begin(NOW), table)
    assert step.cursor.done and len(step.items) == 30 and step.pages == 16


def test_the_cursor_survives_the_snapshot_header_and_a_bad_one_starts_a_new_sweep():
    cursor = SweepCursor(NOW, 4, ((2, {"vin": {"S": "V1"}}), (3, None)))
    assert SweepCursor.from_header(cursor.as_header()) == cursor
    for bad in (None, {}, {"started_at": "x"}, {**cursor.as_header(), "todo": [[9, None]]}):
        assert SweepCursor.from_header(bad) is None


def test_a_sweep_in_progress_goes_on_and_a_new_one_begins_only_when_the_last_began_30_minutes_ago():
    running = SweepCursor(NOW, 4, ((1, None),))
    later = NOW + timedelta(hours=5)
    assert sweep_to_work_on(running, None, later) is running
    finished = SweepCursor(NOW, 4, ())
    assert sweep_to_work_on(finished, None, NOW + SWEEP_EVERY - timedelta(seconds=1)) is None
    again = sweep_to_work_on(finished, None, NOW + SWEEP_EVERY)
    assert again is not None and again.started_at == NOW + SWEEP_EVERY and len(again.todo) == 4
    # A snapshot written before sweeps (no cursor): its last full rebuild counts as the last sweep.
    assert sweep_to_work_on(None, NOW, NOW + timedelta(minutes=10)) is None
    first = sweep_to_work_on(None, None, NOW)
    assert first is not None and first.started_at == NOW


def test_with_a_sink_the_items_go_out_read_by_read_in_small_reads_within_the_same_budget():
    # Given 20,000 vehicles at 100 a page and a budget of 40 pages a tick, items handed to a sink
    table = FakeSegments([f"V{n:07d}" for n in range(20_000)], per_page=100)
    cursor, seen, reads, ticks = SweepCursor.begin(NOW, segments=8), [], [], 0

    def sink(items):
        reads.append(len(items))
        seen.extend(item["vin"] for item in items)

    while not cursor.done:
        step = sweep_step(cursor, table, page_budget=40, parallel=4, sink=sink)
        assert step.pages <= 40 + 4 and not step.items
        cursor, ticks = step.cursor, ticks + 1
        assert ticks < 20
    # Then no read holds more than SWEEP_PAGES_PER_READ pages, and every vehicle comes once
    assert max(reads) <= SWEEP_PAGES_PER_READ * 100 and sorted(seen) == table.vins
    assert 5 <= ticks <= 8
