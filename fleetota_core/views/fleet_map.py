"""The fleet map's figure: vehicle markers over land outlines that render without internet."""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.express as px
import plotly.graph_objects as go

from fleetota_core.domain.geography import METROS
from fleetota_core.views.fleet import NEVER_REPORTED, version_key
from fleetota_core.views.text import chart_frame

if TYPE_CHECKING:
    import pandas as pd

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
    "Fleet extent": ("world", "natural earth"),
    "World": ("world", "natural earth"),
    "USA": ("usa", "albers usa"),
    "Europe": ("europe", "mercator"),
}
# A metro view zooms the world outlines to the metro's bounding box, padded by this many degrees.
METRO_SCOPES = {metro.name: metro.bbox for metro in METROS}
METRO_PAD_DEG = 0.15


def scope_names() -> list[str]:
    """The map's views: the fleet, the world, two continents, then each metro."""
    return [*SCOPES, *METRO_SCOPES]


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
# Above this many markers the hover keeps only the essentials: every hover column is sent per vehicle,
# and at 100,000 vehicles the full set doubles the figure's size and build time.
LARGE_FLEET = 20_000
HOVER_LARGE = {"firmware_version": True, "soc_pct": ":.0f"}


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


def _located(fleet: pd.DataFrame, column: str) -> pd.DataFrame:
    """The vehicles with a position, ``column`` filled, and vehicle-chosen text escaped for Plotly."""
    if column not in fleet:
        fleet = fleet.assign(**{column: NOT_TARGETED})
    located = fleet.dropna(subset=["lat", "lon"])
    return chart_frame(located, ("vin", "model", "firmware_version", "region"))


def offline_map(fleet: pd.DataFrame, colour_by: str = "Status", scope: str = "Fleet extent") -> go.Figure:
    """``scatter_geo`` of the located vehicles; outlines come from the locally served topojson."""
    column = COLOUR_BY[colour_by]
    located = _located(fleet, column)
    # 4 decimals is 11 m: finer positions only make the page heavier.
    located = located.assign(lat=located["lat"].round(4), lon=located["lon"].round(4))
    metro = METRO_SCOPES.get(scope)
    geo_scope, projection = ("world", "mercator") if metro else SCOPES[scope]
    hover = HOVER_LARGE if len(located) > LARGE_FLEET else {k: v for k, v in HOVER.items() if k != "vin"}
    fig = px.scatter_geo(
        located,
        lat="lat",
        lon="lon",
        color=column,
        hover_name="vin",
        hover_data={**hover, "lat": False, "lon": False, column: True},
        scope=geo_scope,
        projection=projection,
        **_colours(located, column),
    )
    # A metro view has room for bigger dots.
    size = 9 if metro is not None else (6 if len(located) < 5000 else 4)
    fig.update_traces(marker={"size": size, "opacity": 0.8, "line": {"width": 0}})
    fig.update_geos(
        resolution=50,
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
        fitbounds="locations" if scope == "Fleet extent" and len(located) else False,
    )
    if metro is not None:
        south, west, north, east = metro
        fig.update_geos(
            lataxis_range=[south - METRO_PAD_DEG, north + METRO_PAD_DEG],
            lonaxis_range=[west - METRO_PAD_DEG, east + METRO_PAD_DEG],
        )
    fig.update_layout(
        height=640,
        uirevision=f"{scope}|{colour_by}",  # live refreshes keep the operator's zoom and pan
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "title": {"text": colour_by}},
    )
    return fig


def street_map(fleet: pd.DataFrame, colour_by: str = "Status") -> go.Figure:
    """Street tiles (needs internet): the same markers on an OpenStreetMap basemap."""
    column = COLOUR_BY[colour_by]
    located = _located(fleet, column)
    fig = px.scatter_map(
        located,
        lat="lat",
        lon="lon",
        color=column,
        hover_name="vin",
        hover_data={**HOVER, "lat": False, "lon": False},
        map_style="open-street-map",
        zoom=2,
        **_colours(located, column),
    )
    fig.update_layout(height=640, uirevision=colour_by, margin={"l": 0, "r": 0, "t": 0, "b": 0})
    return fig
