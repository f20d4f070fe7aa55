"""The vehicles table, one page at a time: filtered and cut on the server, so a browser never gets
the whole fleet (at 1,000,000 vehicles that would be hundreds of MB of rows)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fleetota_core.views.fleet import fleet_mask

if TYPE_CHECKING:
    import pandas as pd

PAGE_SIZE = 100


@dataclass(frozen=True)
class VehiclePage:
    """One page of the vehicles matching the filters, in VIN order."""

    rows: pd.DataFrame
    matched: int  # vehicles matching the filters, on every page
    page: int  # 1-based; a page past the end is the last one
    pages: int
    page_size: int = PAGE_SIZE

    @property
    def first(self) -> int:
        """The 1-based position of the page's first row among the matches (0 when none match)."""
        return (self.page - 1) * self.page_size + 1 if self.matched else 0


def vehicle_page(
    fleet: pd.DataFrame,
    page: int = 1,
    models: list[str] | None = None,
    regions: list[str] | None = None,
    versions: list[str] | None = None,
    text: str = "",
    page_size: int = PAGE_SIZE,
) -> VehiclePage:
    """Page ``page`` of the vehicles matching every filter (an empty filter matches all).

    Only the page's rows are copied out of ``fleet``: at 1,000,000 vehicles filtering costs ~0.1 s and
    the page, whatever the filters, is at most ``page_size`` rows.
    """
    mask = fleet_mask(fleet, models, regions, versions, text)
    positions = np.arange(len(fleet)) if mask is None else np.flatnonzero(mask.to_numpy(dtype=bool))
    pages = max(1, math.ceil(len(positions) / page_size))
    page = min(max(page, 1), pages)
    start = (page - 1) * page_size
    rows = fleet.iloc[positions[start : start + page_size]].reset_index(drop=True)
    return VehiclePage(rows, len(positions), page, pages, page_size)
