"""Fleet map: every vehicle, coloured by status, battery, firmware or its state in a campaign,
filtered by model, region and version, zoomed to the fleet, a continent or a metro."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from fleetota_core.views.campaigns import campaign_summary, deployments_frame
from fleetota_core.views.fleet import filter_fleet, version_key
from fleetota_core.views.fleet_map import (
    COLOUR_BY,
    DEPLOYMENT,
    offline_map,
    scope_names,
    street_map,
    with_deployments,
)
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


st.title("Fleet map")
fleet = _ui.fleet_or_stop()
if fleet.empty:
    _ui.empty_state(
        "No vehicles to show yet. Start the simulator on the **Simulator** page; vehicles appear "
        "here as soon as their first telemetry is processed."
    )
    st.stop()

c1, c2, c3, c4, c5 = st.columns([1.2, 1, 1, 1, 1])
colour_by = c1.radio("Colour by", list(COLOUR_BY), horizontal=True, key="map_colour")
models = c2.multiselect("Model", sorted(fleet["model"].unique()), key="map_models")
regions = c3.multiselect("Region", sorted(fleet["region"].unique()), key="map_regions")
versions = c4.multiselect(
    "Firmware", sorted(fleet["firmware_version"].unique(), key=version_key), key="map_versions"
)
scope = c5.selectbox("View", scope_names(), key="map_scope", help="the fleet, a continent or one metro")
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
    # Re-reads the (cached) fleet on each refresh; the figure keeps the operator's zoom (uirevision).
    current = _ui.fleet()
    shown = filter_fleet(current, models, regions, versions)
    if colour_by == DEPLOYMENT:
        backend = _ui.backend()
        deployments = _deployments(backend.key, campaign_id, backend) if campaign_id else pd.DataFrame()
        shown = with_deployments(shown, deployments)
    located = int(shown["lat"].notna().sum())
    st.caption(
        f"{len(shown):,} of {len(current):,} vehicles match; {located:,} have a position. "
        f"Hover a marker for details; scroll to zoom. Refreshes every {MAP_REFRESH_S} s."
    )
    if tiles:
        st.plotly_chart(street_map(shown, colour_by), key="street_map")
    else:
        st.plotly_chart(
            offline_map(shown, colour_by, scope),
            config={"topojsonURL": TOPOJSON_URL, "scrollZoom": True, "displaylogo": False},
            key="fleet_map",
        )


live_map(colour_by, models, regions, versions, scope, tiles, campaign_id)
