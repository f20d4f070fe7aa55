"""The fleet map's figure: vehicle markers over land outlines that render without internet."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

from fleetota_core.views.fleet import NEVER_REPORTED, version_key
from fleetota_core.views.map_view import FLEET_EXTENT, METRO_VIEWPORTS, MapView, cell_viewport, plan_map
from fleetota_core.views.text import chart_frame, chart_text

if TYPE_CHECKING:
    import pandas as pd

    from fleetota_core.views.fleet_bins import Viewport

DEPLOYMENT = "Deployment state"
COLOUR_BY = {
    "Status": "status",
    "Battery": "battery",
    "Firmware version": "firmware_version",
    DEPLOYMENT: "deployment",
}
STATUS_COLOURS = {
    "driving": "#2563eb",
    "charging": "#16a34a",
    "parked": "#9333ea",
    "offline": "#9ca3af",
    NEVER_REPORTED: "#e5e7eb",
}
NOT_TARGETED = "not in campaign"
# The deployment path from waiting to done, then the ways it can end badly; grey when not targeted.
DEPLOYMENT_COLOURS = {
    "PENDING": "#94a3b8",
    "DEFERRED": "#fbbf24",
    "ELIGIBLE": "#a5b4fc",
    "NOTIFIED": "#818cf8",
    "DOWNLOADING": "#3b82f6",
    "VERIFYING": "#0ea5e9",
    "DOWNLOADED": "#67e8f9",
    "AWAITING_CONSENT": "#c4b5fd",
    "AWAITING_INSTALL": "#5eead4",
    "INSTALLING": "#06b6d4",
    "SUCCEEDED": "#16a34a",
    "RETRY_SCHEDULED": "#f97316",
    "FAILED": "#dc2626",
    "REJECTED": "#b91c1c",
    "TIMED_OUT": "#9f1239",
    "ROLLED_BACK": "#7c3aed",
    "CANCELLED": "#6b7280",
    NOT_TARGETED: "#d6d3d1",
}
BATTERY_COLOURS = {
    "critical": "#dc2626",
    "low": "#f59e0b",
    "ok": "#84cc16",
    "high": "#15803d",
    "unknown": "#9ca3af",
}
# scope -> (plotly geo scope, projection); plotly fetches "<scope>_<resolution>.json" from topojsonURL.
SCOPES = {
    FLEET_EXTENT: ("world", "natural earth"),
    "World": ("world", "natural earth"),
    "USA": ("usa", "albers usa"),
    "Europe": ("europe", "mercator"),
}
# Coarse outlines (world_110m.json, 137 kB) draw in a fraction of the fine ones' time (world_50m.json,
# 1.1 MB); the fine ones only where they show: views narrower than this many degrees.
FINE_OUTLINES_BELOW_DEG = 20.0


def scope_names() -> list[str]:
    """The map's views: the fleet, the world, two continents, then each metro."""
    return [*SCOPES, *METRO_VIEWPORTS]


def with_deployments(fleet: pd.DataFrame, deployments: pd.DataFrame) -> pd.DataFrame:
    """The fleet with a ``deployment`` column: each vehicle's state in one campaign, or not targeted."""
    states: dict[str, str] = {}
    if len(deployments):
        states = dict(zip(deployments["vin"], deployments["state"].map(str), strict=True))
    return fleet.assign(deployment=[states.get(vin, NOT_TARGETED) for vin in fleet["vin"]])


HOVER = {
    "vin": True,
    "model": True,
    "firmware_version": True,
    "soc_pct": ":.0f",
    "speed_kph": ":.0f",
    "region": True,
}


def _colours(fleet: pd.DataFrame, column: str) -> dict:
    if column == "deployment":
        return {
            "color_discrete_map": DEPLOYMENT_COLOURS,
            "category_orders": {"deployment": list(DEPLOYMENT_COLOURS)},
        }
    if column == "status":
        return {"color_discrete_map": STATUS_COLOURS, "category_orders": {"status": list(STATUS_COLOURS)}}
    if column == "battery":
        return {"color_discrete_map": BATTERY_COLOURS, "category_orders": {"battery": list(BATTERY_COLOURS)}}
    versions = sorted(fleet["firmware_version"].unique(), key=version_key)
    return {
        "category_orders": {"firmware_version": versions},
        "color_discrete_sequence": px.colors.qualitative.Bold,
    }


def located_with(fleet: pd.DataFrame, column: str) -> pd.DataFrame:
    """The fleet with ``column`` (not targeted, for deployments, when missing); no copy when present.

    Vehicles without a position stay in: the plan never draws them, and dropping them here would copy
    every row of a million-vehicle frame on each render.
    """
    return fleet if column in fleet else fleet.assign(**{column: NOT_TARGETED})


def offline_map(
    fleet: pd.DataFrame, colour_by: str = "Status", scope: str = FLEET_EXTENT, focus: Viewport | None = None
) -> go.Figure:
    """The map of ``fleet`` in one view: its vehicles when few are in view, else counted in cells."""
    column = COLOUR_BY[colour_by]
    view = plan_map(located_with(fleet, column), column, scope, focus)
    return map_figure(view, colour_by, scope, zoomed=focus is not None)


def map_figure(view: MapView, colour_by: str, scope: str, zoomed: bool = False) -> go.Figure:
    """``scatter_geo`` of a planned view; outlines come from the locally served topojson."""
    if view.binned:
        fig = _cells_figure(view.bins, colour_by)
    else:
        fig = _vehicles_figure(view.vehicles, colour_by, close=zoomed or scope in METRO_VIEWPORTS)
    _style_geo(fig, view.viewport, scope, zoomed)
    legend = f"{colour_by} (most common in each cell; area = vehicles)" if view.binned else colour_by
    if view.binned:
        fig.update_layout(showlegend=True)  # even when one value is the most common everywhere
    fig.update_layout(
        height=640,
        uirevision=f"{scope}|{colour_by}|{view.viewport}",  # live refreshes keep the operator's zoom
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "title": {"text": legend}},
    )
    return fig


def _vehicles_figure(vehicles: pd.DataFrame, colour_by: str, close: bool) -> go.Figure:
    column = COLOUR_BY[colour_by]
    shown = chart_frame(vehicles, ("vin", "model", "firmware_version", "region"))
    # 4 decimals is 11 m: finer positions only make the page heavier.
    shown = shown.assign(lat=shown["lat"].round(4), lon=shown["lon"].round(4))
    hover = {k: v for k, v in HOVER.items() if k != "vin"}
    fig = px.scatter_geo(
        shown,
        lat="lat",
        lon="lon",
        color=column,
        hover_name="vin",
        hover_data={**hover, "lat": False, "lon": False, column: True},
        **_colours(shown, column),
    )
    # A close view has room for bigger dots.
    size = 9 if close else (6 if len(shown) < 5000 else 4)
    fig.update_traces(marker={"size": size, "opacity": 0.8, "line": {"width": 0}})
    return fig


def _category_colours(labels: list[str], column: str) -> dict[str, str]:
    known = {"deployment": DEPLOYMENT_COLOURS, "status": STATUS_COLOURS, "battery": BATTERY_COLOURS}
    if column in known:
        return {label: known[column].get(label, "#6b7280") for label in labels}
    palette = px.colors.qualitative.Bold
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def _cells_figure(bins: pd.DataFrame, colour_by: str, trace: type = go.Scattergeo) -> go.Figure:
    """One marker per cell at its vehicles' mean position, area by count, coloured by its majority."""
    column = COLOUR_BY[colour_by]
    order = {"deployment": DEPLOYMENT_COLOURS, "status": STATUS_COLOURS, "battery": BATTERY_COLOURS}
    present = list(dict.fromkeys(bins["dominant"]))
    labels = (
        [c for c in order[column] if c in present] if column in order else sorted(present, key=version_key)
    )
    colours = _category_colours(labels, column)
    largest = float(bins["count"].max())
    labelled = _label_cells(bins)
    smallest_px, largest_px = _marker_sizes(bins)
    fig = go.Figure()
    for label in labels:
        cells = bins[bins["dominant"] == label]
        counts = cells["count"].to_numpy(dtype=float)
        fig.add_trace(
            trace(
                lat=cells["lat"].round(4),
                lon=cells["lon"].round(4),
                name=chart_text(label),
                mode="markers+text",
                text=[_compact(c) if i in labelled else "" for i, c in zip(cells.index, counts, strict=True)],
                textposition="top center",
                textfont={"size": 11, "color": "#1f2937"},
                marker={
                    "size": smallest_px + (largest_px - smallest_px) * (counts / largest) ** 0.5,
                    "color": colours[label],
                    "opacity": 0.8,
                    "line": {"width": 1, "color": "#ffffff"},
                },
                # count and mix for the hover, then the box a click on the cell zooms to
                customdata=list(
                    zip(
                        cells["count"],
                        cells["mix"].map(chart_text),
                        *(cells[c] for c in CELL_BOX),
                        strict=True,
                    )
                ),
                hovertemplate="<b>%{customdata[0]:,} vehicles</b><br>%{customdata[1]}"
                "<br>click to zoom in<extra></extra>",
            )
        )
    return fig


CELL_BOX = ("lat_min", "lon_min", "lat_max", "lon_max")


def clicked_cell(points: list[dict]) -> Viewport | None:
    """What a click on a cell zooms to (see :func:`cell_viewport`), from the chart's selection."""
    for point in points:
        data = point.get("customdata")
        if isinstance(data, list) and len(data) == 2 + len(CELL_BOX):
            return cell_viewport(dict(zip(CELL_BOX, data[2:], strict=True)))
    return None


def _marker_sizes(bins: pd.DataFrame) -> tuple[float, float]:
    """Marker diameters (px) for the smallest and largest cell: no wider than a cell is on screen, so
    a view full of cells is a grid of dots, not a carpet of overlapping discs."""
    size = float((bins["north"] - bins["south"]).iloc[0])
    across = max(np.ptp(bins["lon"]) / size, np.ptp(bins["lat"]) / size, 1.0)
    largest_px = float(np.clip(650 / across, 10, 30))
    return max(4.0, largest_px / 4), largest_px


def _label_cells(bins: pd.DataFrame, most: int = 40) -> set[int]:
    """The cells whose count is written beside them: the largest first, none within two cells (five
    when the view is full of cells) of one already labelled, so the labels never pile up."""
    labelled: list[tuple[float, float]] = []
    chosen: set[int] = set()
    size = float((bins["north"] - bins["south"]).iloc[0]) if len(bins) else 0.0
    spacing = (2 if len(bins) < 200 else 5) * size
    for index, lat, lon in zip(bins.index, bins["lat"], bins["lon"], strict=True):
        if all(abs(lat - a) > spacing or abs(lon - b) > spacing for a, b in labelled):
            labelled.append((lat, lon))
            chosen.add(index)
            if len(chosen) == most:
                break
    return chosen


def _compact(count: float) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    return (
        f"{count / 1000:.0f}k"
        if count >= 10_000
        else (f"{count / 1000:.1f}k" if count >= 1000 else f"{count:.0f}")
    )


# The map's drawing area, width over height (the page's column at height 640).
PLOT_ASPECT = 1.45


def _fit_aspect(viewport: Viewport, pad: float) -> Viewport:
    """``viewport`` padded by ``pad`` of its span, then widened or heightened to the plot's shape.

    Mercator stretches latitude by 1/cos(latitude): without this a square box of degrees at 50° N is
    drawn as a narrow column in the middle of the map.
    """
    south, west, north, east = viewport
    lat_pad, lon_pad = (north - south) * pad, (east - west) * pad
    south, north, west, east = south - lat_pad, north + lat_pad, west - lon_pad, east + lon_pad
    stretch = 1.0 / max(math.cos(math.radians((south + north) / 2)), 0.2)
    width, height = east - west, (north - south) * stretch
    if width < PLOT_ASPECT * height:
        grow = (PLOT_ASPECT * height - width) / 2
        west, east = west - grow, east + grow
    else:
        grow = (width / PLOT_ASPECT - height) / stretch / 2
        south, north = south - grow, north + grow
    return (max(south, -85.0), max(west, -180.0), min(north, 85.0), min(east, 180.0))


def _style_geo(fig: go.Figure, viewport: Viewport, scope: str, zoomed: bool) -> None:
    south, west, north, east = viewport
    close = zoomed or scope in METRO_VIEWPORTS
    span = max(north - south, east - west)
    fig.update_geos(
        resolution=50 if span < FINE_OUTLINES_BELOW_DEG else 110,
        showland=True,
        landcolor="#eef0e6",
        showocean=True,
        oceancolor="#dbeafe",
        showlakes=True,
        lakecolor="#dbeafe",
        showcountries=True,
        countrycolor="#94a3b8",
        showsubunits=True,
        subunitcolor="#cbd5e1",
        showcoastlines=True,
        coastlinecolor="#64748b",
    )
    if close:
        south, west, north, east = _fit_aspect(viewport, pad=0.08 if zoomed else 0.0)
        fig.update_geos(
            scope="world",
            projection_type="mercator",
            lataxis_range=[south, north],
            lonaxis_range=[west, east],
        )
        return
    geo_scope, projection = SCOPES[scope]
    fig.update_geos(
        scope=geo_scope,
        projection_type=projection,
        fitbounds="locations" if scope == FLEET_EXTENT and len(fig.data) else False,
    )


def street_map(view: MapView, colour_by: str = "Status") -> go.Figure:
    """Street tiles (needs internet): the same vehicles or cells on an OpenStreetMap basemap."""
    column = COLOUR_BY[colour_by]
    if view.binned:
        fig = _cells_figure(view.bins, colour_by, trace=go.Scattermap)
    else:
        shown = chart_frame(view.vehicles, ("vin", "model", "firmware_version", "region"))
        fig = px.scatter_map(
            shown,
            lat="lat",
            lon="lon",
            color=column,
            hover_name="vin",
            hover_data={**HOVER, "lat": False, "lon": False},
            **_colours(shown, column),
        )
    south, west, north, east = view.viewport
    fig.update_layout(
        map={
            "style": "open-street-map",
            "bounds": {"south": south, "west": west, "north": north, "east": east},
        },
        height=640,
        uirevision=f"{colour_by}|{view.viewport}",
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
    )
    return fig
