"""Overview: the fleet and the rollouts at a glance, trends, and what needs attention now."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from fleetota_core.views.campaigns import campaign_summary
from fleetota_core.views.fleet import fleet_kpis, version_key
from fleetota_core.views.fleet_map import STATUS_COLOURS
from fleetota_core.views.monitoring import FLEET_TRENDS, alarms_frame, metric_trends, pipeline_health
from fleetota_core.views.text import chart_frame, chart_text, plain
from pages import _ui
from pages._demo_campaign import demo_campaign

_ui.frame_guard()


@st.cache_data(ttl=15, show_spinner=False)
def _campaigns(key: str, _backend) -> pd.DataFrame:
    return campaign_summary(_backend.ports)


@st.cache_data(ttl=30, show_spinner=False)
def _alarms(key: str, _backend) -> pd.DataFrame:
    return alarms_frame(_backend.clients, _backend.settings.stack_name)


@st.cache_data(ttl=30, show_spinner="Loading CloudWatch trends…")
def _trends(key: str, hours: float, _backend) -> pd.DataFrame:
    return metric_trends(_backend.clients, FLEET_TRENDS, hours)


@st.cache_data(ttl=15, show_spinner=False)
def _health(key: str, _backend):
    return pipeline_health(_backend.clients, _backend.resources)


st.title("Fleet overview")
backend = _ui.backend()
with _ui.guard("the demo campaign"):
    if demo_campaign(backend, "overview"):
        _campaigns.clear()
        st.rerun()


@_ui.live(_ui.LIVE_REFRESH_S, "the fleet overview")
def kpis() -> None:
    fleet = _ui.fleet()
    k = fleet_kpis(fleet)
    campaigns = pd.DataFrame()
    alarms = pd.DataFrame()
    with _ui.guard("campaigns"):
        campaigns = _campaigns(backend.key, backend)
    with _ui.guard("alarms"):
        alarms = _alarms(backend.key, backend)
    active = int(campaigns["active"].sum()) if len(campaigns) else 0
    executed = int(campaigns["executed"].sum()) if len(campaigns) else 0
    succeeded = int(campaigns["succeeded"].sum()) if len(campaigns) else 0
    in_alarm = int((alarms["state"] == "ALARM").sum()) if len(alarms) else 0
    cols = st.columns(7)
    cols[0].metric(
        "Vehicles",
        f"{k.vehicles:,}",
        help=f"The whole fleet: {k.reported:,} have reported, {k.never_reported:,} never have",
    )
    cols[1].metric(
        "Never reported",
        f"{k.never_reported:,}",
        help="Provisioned (in the simulator's fleet definition) but no telemetry received yet",
    )
    cols[2].metric(
        "Online",
        f"{k.online_pct:.1f} %",
        help=f"{k.online:,} of all {k.vehicles:,} vehicles; a vehicle that never reported counts as offline",
    )
    cols[3].metric("Average battery", "—" if k.battery_avg is None else f"{k.battery_avg:.0f} %")
    cols[4].metric("Active campaigns", active)
    cols[5].metric(
        "OTA success rate",
        "—" if executed == 0 else f"{100 * succeeded / executed:.1f} %",
        help=f"{succeeded:,} of {executed:,} finished deployments succeeded",
    )
    cols[6].metric("Alarms in ALARM", in_alarm)
    if k.vehicles == 0:
        _ui.empty_state(
            "No vehicles have reported yet. Start the simulator on the **Simulator** page "
            "(or `python -m simulator --vehicles 100`) and the fleet appears within a minute."
        )
        return

    left, right = st.columns(2)
    by_status = fleet["status"].value_counts().rename_axis("status").reset_index(name="vehicles")
    pie = px.pie(
        by_status,
        names="status",
        values="vehicles",
        hole=0.55,
        title="Vehicles by status",
        color="status",
        color_discrete_map=STATUS_COLOURS,
    )
    left.plotly_chart(pie)
    by_version = fleet.groupby(["firmware_version", "model"]).size().reset_index(name="vehicles")
    order = [chart_text(v) for v in sorted(by_version["firmware_version"].unique(), key=version_key)]
    by_version = chart_frame(by_version, ["firmware_version", "model"])
    bars = px.bar(
        by_version,
        x="firmware_version",
        y="vehicles",
        color="model",
        title="Firmware versions",
        category_orders={"firmware_version": order},
    )
    bars.update_layout(xaxis_title=None, xaxis_type="category")
    right.plotly_chart(bars)
    attention(fleet, campaigns, alarms)


def attention(fleet: pd.DataFrame, campaigns: pd.DataFrame, alarms: pd.DataFrame) -> None:
    st.subheader("Needs attention")
    items: list[str] = []
    for _, alarm in alarms[alarms["state"] == "ALARM"].iterrows() if len(alarms) else []:
        items.append(
            f":red[:material/notifications_active:] Alarm **{plain(alarm['name'])}**: "
            + plain(alarm["reason"])
        )
    if len(campaigns):
        for _, c in campaigns[campaigns["state"] == "PAUSED"].iterrows():
            items.append(
                f":orange[:material/pause_circle:] Campaign **{plain(c['name'])}** is paused: "
                f"{plain(c.get('state_reason') or 'by an operator')}"
            )
    with _ui.guard("pipeline health"):
        health = _health(backend.key, backend)
        if health.dlq_visible:
            items.append(
                f":orange[:material/move_to_inbox:] {health.dlq_visible} telemetry message(s) in the "
                "dead-letter queue (see Monitoring)"
            )
        if health.queue_visible > 1000:
            items.append(
                f":orange[:material/hourglass_top:] Telemetry backlog: {health.queue_visible:,} messages"
            )
    critical = int((fleet["battery"] == "critical").sum())
    if critical:
        items.append(f":red[:material/battery_alert:] {critical} vehicle(s) below 10 % battery")
    if items:
        for item in items:
            st.markdown(f"- {item}")
    else:
        st.success("Nothing needs attention right now.", icon=":material/check_circle:")


kpis()

st.subheader("Trends")
hours = _ui.time_range(default="6 hours", key="overview_range")
with _ui.guard("CloudWatch trends"):
    trends = _trends(backend.key, hours, backend)
    if trends.empty:
        _ui.empty_state("No CloudWatch data in this range yet: metrics appear once telemetry flows.")
    else:
        _ui.trend_charts(trends, hours, columns=2, height=280, key="overview")
