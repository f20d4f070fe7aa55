"""Suite-wide ordering: the longest tests first, so two xdist workers finish together.

pytest-xdist (``-n 2 --dist worksteal`` in scripts/test.sh) hands tests out in collection order.
Collected by path, the browser tests (minutes each) came last, so one worker ran them alone after the
other had gone idle: 1,291 s of tests took 1,127 s of wall time. Started first, they overlap with the
rest, and an idle worker takes queued tests from the busy one.
"""

from __future__ import annotations

import pytest


def _weight(item: pytest.Item) -> int:
    """0 for a browser test, 1 for another slow one, 2 for the rest (the order within each kept)."""
    if item.get_closest_marker("e2e"):
        return 0
    return 1 if item.get_closest_marker("slow") else 2


@pytest.hookimpl(trylast=True)  # after tests/e2e/conftest.py has marked its tests
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_weight)
