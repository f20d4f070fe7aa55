"""Vehicles: a searchable, filterable table, one page at a time, and a detail view of one vehicle.

Filtering and paging happen on the server (fleetota_core/views/vehicle_table.py): the browser gets
one page of rows, whatever the fleet's size.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from fleetota_core.views.fleet import never_reported
from fleetota_core.views.text import plain
from fleetota_core.views.vehicle_table import PAGE_SIZE, VehiclePage, vehicle_page
from fleetota_core.views.vehicles import ota_history, recent_telemetry, vehicle_state
from pages import _ui

TABLE_COLUMNS = [
    "vin", "make", "model", "model_year", "hw_rev", "firmware_version", "region", "metro",
    "status", "soc_pct", "speed_kph", "network", "signal_dbm", "last_ts",
]  # fmt: skip
NEVER_REPORTED_ROWS = 1_000  # the first ones, in VIN order; the table above pages through them all


_ui.frame_guard()


@st.cache_data(ttl=_ui.FLEET_CACHE_S, max_entries=64, show_spinner=False)
def _page(
    version: str, page: int, models: list, regions: list, versions: list, text: str, _fleet: pd.DataFrame
) -> VehiclePage:
    # Keyed on the fleet's version (not its rows): paging back and forth never filters it twice.
    return vehicle_page(_fleet, page, models, regions, versions, text)


@st.cache_data(ttl=_ui.FLEET_CACHE_S, max_entries=4, show_spinner=False)
def _silent(version: str, _fleet: pd.DataFrame) -> pd.DataFrame:
    return never_reported(_fleet)


@st.cache_data(ttl=10, show_spinner=False)
def _state(key: str, vin: str, _backend) -> dict | None:
    return vehicle_state(_backend.clients, _backend.resources, vin)


@st.cache_data(ttl=10, show_spinner=False)
def _history(key: str, vin: str, _backend) -> pd.DataFrame:
    return ota_history(_backend.ports, vin)


@st.cache_data(ttl=15, show_spinner="Reading recent telemetry…")
def _telemetry(key: str, vin: str, _backend) -> pd.DataFrame:
    return recent_telemetry(_backend.clients, _backend.resources, vin)


st.title("Vehicles")
backend = _ui.backend()
version, fleet = _ui.fleet_view_or_stop()
if fleet.empty:
    _ui.empty_state(
        "No vehicles yet. Start the simulator on the **Simulator** page (it provisions its fleet), or "
        "import a real fleet with `fleetota vehicle provision --csv FILE`; every provisioned vehicle is "
        "listed here, and its state appears after its first telemetry record."
    )
    st.stop()

c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
text = c1.text_input("Search VIN or model", key="veh_search", placeholder="e.g. 5YJ3 or Model Y")
options = _ui.choices(version, fleet)
models = c2.multiselect("Model", options.models, key="veh_models")
regions = c3.multiselect("Region", options.regions, key="veh_regions")
versions = c4.multiselect("Firmware", options.versions, key="veh_versions")
table = _page(version, st.session_state.get("veh_page", 1), models, regions, versions, text, fleet)
if st.session_state.get("veh_page", 1) != table.page:
    st.session_state["veh_page"] = table.page  # narrower filters: the last page there is
st.caption(
    f"{table.matched:,} of {len(fleet):,} vehicles"
    + (f"; rows {table.first:,}-{table.first + len(table.rows) - 1:,} shown" if table.pages > 1 else "")
    + ". Select a row for its details."
)
selection = st.dataframe(
    table.rows[TABLE_COLUMNS],
    hide_index=True,
    height=360,
    on_select="rerun",
    selection_mode="single-row",
    key="veh_table",
    column_config={
        "vin": st.column_config.TextColumn("VIN", width="medium"),
        "soc_pct": st.column_config.ProgressColumn("Battery", format="%.0f %%", min_value=0, max_value=100),
        "speed_kph": st.column_config.NumberColumn("Speed", format="%.0f km/h"),
        "signal_dbm": st.column_config.NumberColumn("Signal", format="%d dBm"),
        "last_ts": st.column_config.DatetimeColumn("Last seen", format="YYYY-MM-DD HH:mm:ss"),
        "firmware_version": "Firmware",
        "model_year": st.column_config.NumberColumn("Year", format="%d"),
        "make": "Make",
        "model": "Model",
        "hw_rev": "HW",
        "region": "Region",
        "metro": "Metro",
        "status": "Status",
        "network": "Network",
    },
)
if table.pages > 1:
    p1, _ = st.columns([1, 4])
    p1.number_input(
        f"Page (of {table.pages:,}, {PAGE_SIZE} rows each)",
        min_value=1,
        max_value=table.pages,
        step=1,
        key="veh_page",
    )
silent = _silent(version, fleet)
with st.expander(f"Provisioned, never reported: {len(silent):,}", expanded=False):
    if silent.empty:
        st.caption("Every provisioned vehicle has sent telemetry at least once.")
    else:
        st.caption(
            "These vehicles are in the registry but no record of theirs has arrived yet: check that they "
            "are powered, connected and configured with this stack's telemetry bucket."
        )
        st.dataframe(
            silent[["vin", "make", "model", "model_year", "hw_rev", "region"]].head(NEVER_REPORTED_ROWS),
            hide_index=True,
            key="veh_never_reported",
        )

rows = selection.selection.rows if selection else []
vins = table.rows["vin"].tolist()  # the vehicles on this page
default_vin = vins[rows[0]] if rows else (vins[0] if vins else None)
vin = st.selectbox("Vehicle", vins, index=vins.index(default_vin) if default_vin else None, key="veh_vin")
if not vin:
    st.stop()

state = _state(backend.key, vin, backend) or table.rows.loc[table.rows["vin"] == vin].iloc[0].to_dict()
st.subheader(
    f":material/directions_car: {plain(vin)} · "
    f"{plain(state.get('model', ''))} {plain(state.get('model_year', ''))}"
)
m = st.columns(6)
m[0].metric("Firmware", plain(state.get("firmware_version") or "—"))
soc = state.get("soc_pct")
m[1].metric("Battery", "—" if soc is None or pd.isna(soc) else f"{soc:.0f} %")
m[2].metric("Speed", f"{float(state.get('speed_kph') or 0):.0f} km/h")
m[3].metric("Network", plain(state.get("network", "NONE")))
m[4].metric("Drive state", plain(state.get("drive_state") or "—"))
m[5].metric("Odometer", f"{float(state.get('odometer_km') or 0):,.0f} km")
st.caption(
    f"Region {plain(state.get('region', 'unknown'))} · {plain(state.get('metro') or 'no metro')} · hardware "
    f"{plain(state.get('hw_rev', '?'))} · last seen {plain(state.get('last_ts') or 'never')}"
)

left, right = st.columns([3, 2])
with left, _ui.guard("recent telemetry"):
    telemetry = _telemetry(backend.key, vin, backend)
    if telemetry.empty:
        _ui.empty_state("No recent telemetry batches mention this vehicle; it may be offline.")
    else:
        long = telemetry.melt(id_vars=["ts"], value_vars=["soc_pct", "speed_kph", "signal_dbm"])
        long["variable"] = long["variable"].map(
            {"soc_pct": "Battery (%)", "speed_kph": "Speed (km/h)", "signal_dbm": "Signal (dBm)"}
        )
        fig = px.line(long, x="ts", y="value", facet_row="variable", markers=True, height=460)
        fig.update_yaxes(matches=None, title=None)
        fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
        fig.update_layout(margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis_title=None, showlegend=False)
        st.plotly_chart(fig, key="veh_telemetry")
with right, _ui.guard("OTA history"):
    st.markdown("**OTA history**")
    history = _history(backend.key, vin, backend)
    if history.empty:
        st.caption("This vehicle has not been part of any campaign yet.")
    else:
        st.dataframe(history, hide_index=True)
