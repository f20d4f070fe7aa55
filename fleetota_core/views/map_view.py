"""What the fleet map sends to the browser: the vehicles themselves when few are in view, else cells.

The server decides from the view (a scope, a metro or a cell the operator zoomed into): at most
:data:`POINT_LIMIT` markers or a few hundred cells leave the server whatever the fleet's size, so the
browser's cost does not grow with the fleet (issue #16).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from fleetota_core.domain.geography import METROS
from fleetota_core.views.fleet_bins import WORLD, Viewport, bin_fleet, fleet_extent, in_viewport

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np

# Up to this many vehicles in view are drawn one by one (with their VIN on hover); more are binned.
POINT_LIMIT = 2_500
FLEET_EXTENT = "Fleet extent"
# A zoomed view is never narrower than this (about 100 m), whatever the vehicles' spread.
MIN_SPAN_DEG = 0.001
SCOPE_VIEWPORTS: dict[str, Viewport] = {
    "World": WORLD,
    "USA": (24.0, -125.0, 50.0, -66.0),
    "Europe": (34.0, -25.0, 72.0, 45.0),
}
METRO_PAD_DEG = 0.15
METRO_VIEWPORTS: dict[str, Viewport] = {
    m.name: (
        m.bbox[0] - METRO_PAD_DEG,
        m.bbox[1] - METRO_PAD_DEG,
        m.bbox[2] + METRO_PAD_DEG,
        m.bbox[3] + METRO_PAD_DEG,
    )
    for m in METROS
}


@dataclass(frozen=True)
class MapView:
    """One render of the map: where it looks and what it draws there."""

    viewport: Viewport
    binned: bool
    in_view: int  # located vehicles inside the viewport
    vehicles: pd.DataFrame  # the vehicles to draw one by one (empty when binned)
    bins: pd.DataFrame  # the cells to draw (empty when not binned), largest first


def scope_viewport(scope: str, lat: np.ndarray, lon: np.ndarray) -> Viewport:
    """The box a named view shows: the fleet's extent, the world, a continent or a metro."""
    if scope in METRO_VIEWPORTS:
        return METRO_VIEWPORTS[scope]
    if scope in SCOPE_VIEWPORTS:
        return SCOPE_VIEWPORTS[scope]
    return fleet_extent(lat, lon)


def plan_map(
    fleet: pd.DataFrame,
    column: str,
    scope: str = FLEET_EXTENT,
    focus: Viewport | None = None,
    point_limit: int = POINT_LIMIT,
) -> MapView:
    """The vehicles or the cells to draw for ``scope``, or for ``focus`` (a zoomed cell) if given.

    ``fleet`` has ``lat``, ``lon`` (NaN for a vehicle without a position, never drawn) and the
    colour-by ``column``. Only the rows in view are copied: at 1,000,000 vehicles a copy of the whole
    frame would cost more than the binning.
    """
    lat = fleet["lat"].to_numpy(dtype=float)
    lon = fleet["lon"].to_numpy(dtype=float)
    viewport = focus or scope_viewport(scope, lat, lon)
    inside = in_viewport(lat, lon, viewport)
    count = int(inside.sum())
    south, west, north, east = viewport
    closest = north - south <= MIN_SPAN_DEG and east - west <= MIN_SPAN_DEG
    if count <= point_limit or closest:  # closest: more vehicles in 100 m than drawable; the first ones
        return MapView(viewport, False, count, fleet[inside].head(point_limit), pd.DataFrame())
    bins = bin_fleet(lat, lon, fleet[column], viewport)
    return MapView(viewport, True, count, fleet.head(0), bins)


def focus_label(cell: pd.Series) -> str:
    """A cell as an operator reads it: where its vehicles are and how many."""
    ns = "N" if cell["lat"] >= 0 else "S"
    ew = "E" if cell["lon"] >= 0 else "W"
    return f"{abs(cell['lat']):.2f}°{ns} {abs(cell['lon']):.2f}°{ew} · {int(cell['count']):,} vehicles"


def cell_viewport(cell: Mapping[str, Any]) -> Viewport:
    """What zooming into a cell shows: the box around its vehicles (inside the cell, so the finer cells
    there count only its vehicles), at least :data:`MIN_SPAN_DEG` wide and high."""
    south, west = float(cell["lat_min"]), float(cell["lon_min"])
    north = max(float(cell["lat_max"]), south + MIN_SPAN_DEG)
    east = max(float(cell["lon_max"]), west + MIN_SPAN_DEG)
    return (south, west, north, east)
