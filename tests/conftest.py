"""Suite-wide collection: how `scripts/test.sh` shares the tests between its pytest-xdist workers.

The end-to-end tests each run a whole local stack (moto, the Lambda runtime, a simulator, often
Chromium) against the wall clock. They go to one worker, one after the other (``--dist loadgroup``),
so two of them never compete for the CPU and stretch each other's real-time waits; the unit and the
shorter integration tests fill the other worker meanwhile.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

STACK_E2E = "stack-e2e"  # the xdist group of the end-to-end tests


def is_stack_e2e(path: Path) -> bool:
    return path.parent.name == "e2e" or path.stem.endswith("_e2e")


# A wrapper, so the marks are on the items before any plain implementation runs, pytest-xdist's
# included: it turns the group marks into node ids.
@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Generator[None, None, None]:
    for item in items:
        if is_stack_e2e(Path(str(item.fspath))):
            item.add_marker(pytest.mark.xdist_group(STACK_E2E))
    return (yield)
