"""Fleet map: every vehicle, coloured by status, battery, firmware or its state in a campaign,
filtered by model, region and version, zoomed to the fleet, a continent, a metro or a cell.

The server decides what is drawn (fleetota_core/views/map_view.py): the vehicles one by one when few
are in view, else counts per grid cell, so the browser's work does not grow with the fleet.
"""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from fleetota_core.views.campaigns import campaign_summary, deployments_frame
from fleetota_core.views.fleet import filter_fleet
from fleetota_core.views.fleet_map import (
    COLOUR_BY,
    DEPLOYMENT,
    clicked_cell,
    located_with,
    map_figure,
    scope_names,
    street_map,
    with_deployments,
)
from fleetota_core.views.map_view import MapView, cell_viewport, focus_label, plan_map
from pages import _ui

# Streamlit static serving (.streamlit/config.toml) puts ./static at /app/static; relative so it
# follows whatever host the operator used.
TOPOJSON_URL = "app/static/topojson/"

_ui.frame_guard()


@st.cache_data(ttl=15, show_spinner=False)
def _campaigns(key: str, _backend) -> pd.DataFrame:
    return campaign_summary(_backend.ports)


@st.cache_data(ttl=15, show_spinner=False)
def _deployments(key: str, campaign_id: str, _backend) -> pd.DataFrame:
    return deployments_frame(_backend.ports, campaign_id)


@st.cache_data(ttl=_ui.FLEET_CACHE_S, max_entries=64, show_spinner=False)
def _view(
    version: str,
    colour_by: str,
    models: list,
    regions: list,
    versions: list,
    scope: str,
    focus: tuple | None,
    deployments_key: str,
    _fleet: pd.DataFrame,
    _deployments: pd.DataFrame,
) -> tuple[int, int, MapView]:
    # Keyed on the fleet's version (not its rows): a filter, view or zoom already seen costs nothing.
    shown = filter_fleet(_fleet, models, regions, versions)
    if colour_by == DEPLOYMENT:
        shown = with_deployments(shown, _deployments)
    located = int(shown["lat"].notna().sum())
    return (
        len(shown),
        located,
        plan_map(located_with(shown, COLOUR_BY[colour_by]), COLOUR_BY[colour_by], scope, focus),
    )


def _zoom_out(all_the_way: bool = False) -> None:
    stack = st.session_state.get("map_focus", [])
    st.session_state["map_focus"] = [] if all_the_way else stack[:-1]


st.title("Fleet map")
version, fleet = _ui.fleet_view_or_stop()
if fleet.empty:
    _ui.empty_state(
        "No vehicles to show yet. Start the simulator on the **Simulator** page; vehicles appear "
        "here as soon as their first telemetry is processed."
    )
    st.stop()

c1, c2, c3, c4, c5 = st.columns([1.2, 1, 1, 1, 1])
colour_by = c1.radio("Colour by", list(COLOUR_BY), horizontal=True, key="map_colour")
options = _ui.choices(version, fleet)
models = c2.multiselect("Model", options.models, key="map_models")
regions = c3.multiselect("Region", options.regions, key="map_regions")
versions = c4.multiselect("Firmware", options.versions, key="map_versions")
scope = c5.selectbox(
    "View",
    scope_names(),
    key="map_scope",
    help="the fleet, a continent or one metro",
    on_change=_zoom_out,
    args=(True,),
)
campaign_id = None
if colour_by == DEPLOYMENT:
    backend = _ui.backend()
    with _ui.guard("campaigns"):
        campaigns = _campaigns(backend.key, backend)
        if campaigns.empty:
            st.info("No campaigns yet: launch one on the **Campaigns** page.", icon=":material/info:")
        else:
            names = dict(zip(campaigns["campaign_id"], campaigns["name"], strict=True))
            selected = st.session_state.get("campaign_selected")
            ids = list(names)
            campaign_id = st.selectbox(
                "Campaign",
                ids,
                index=ids.index(selected) if selected in ids else 0,
                format_func=lambda cid: f"{names[cid]} ({cid})",
                key="map_campaign",
            )
tiles = st.toggle("Street tiles (needs internet)", key="map_tiles")

MAP_REFRESH_S = 30
ZOOM_CHOICES = 40


@_ui.live(MAP_REFRESH_S, "the fleet map")
def live_map(
    colour_by: str,
    models: list,
    regions: list,
    versions: list,
    scope: str,
    tiles: bool,
    campaign_id: str | None,
) -> None:
    # Each refresh asks only whether the snapshot changed (one HEAD); an unchanged one costs nothing.
    version, current = _ui.fleet_view()
    deployments, deployments_key = pd.DataFrame(), ""
    if colour_by == DEPLOYMENT and campaign_id:
        backend = _ui.backend()
        deployments = _deployments(backend.key, campaign_id, backend)
        deployments_key = f"{campaign_id}@{int(time.time() // 15)}"
    stack = st.session_state.setdefault("map_focus", [])
    focus = stack[-1] if stack else None
    matched, located, view = _view(
        version, colour_by, models, regions, versions, scope, focus, deployments_key, current, deployments
    )
    total = len(current)
    drawn = (
        f"{len(view.bins):,} cells (marker area = vehicles; click a cell, or pick one under Zoom into, "
        "to see its vehicles)"
        if view.binned
        else "one marker per vehicle (hover for details)"
        if len(view.vehicles) == view.in_view
        else f"one marker per vehicle for the first {len(view.vehicles):,} (they share one spot)"
    )
    st.caption(
        f"{matched:,} of {total:,} vehicles match; {located:,} have a position, {view.in_view:,} of them "
        f"in this view, drawn as {drawn}. Scroll to zoom. Refreshes every {MAP_REFRESH_S} s."
    )
    z1, z2, z3 = st.columns([3, 1, 1])
    if view.binned:
        cells = view.bins.head(ZOOM_CHOICES)
        pick = z1.selectbox(
            "Zoom into",
            range(len(cells)),
            index=None,
            format_func=lambda i: focus_label(cells.iloc[i]),
            placeholder=f"one of the {len(cells)} busiest cells in view",
            key=f"map_zoom_{len(stack)}",
        )
        if pick is not None:
            st.session_state["map_focus"] = [*stack, cell_viewport(cells.iloc[pick])]
            st.rerun()
    if stack:
        z2.button("Zoom out", on_click=_zoom_out, key="map_zoom_out", icon=":material/zoom_out:")
        z3.button(f"Back to {scope}", on_click=_zoom_out, args=(True,), key="map_zoom_reset")
    if tiles:
        st.plotly_chart(street_map(view, colour_by), key="street_map")
    else:
        event = st.plotly_chart(
            map_figure(view, colour_by, scope, zoomed=focus is not None),
            config={"topojsonURL": TOPOJSON_URL, "scrollZoom": True, "displaylogo": False},
            key=f"fleet_map_{len(stack)}",  # a new chart per zoom level: no selection carried over
            on_select="rerun" if view.binned else "ignore",
            selection_mode="points",
        )
        clicked = clicked_cell(event.selection.points) if view.binned and event else None
        if clicked is not None:  # a click on a cell zooms into it
            st.session_state["map_focus"] = [*stack, clicked]
            st.rerun()


live_map(colour_by, models, regions, versions, scope, tiles, campaign_id)
