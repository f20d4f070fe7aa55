"""Compliance: what software each VIN ran and when, and who runs or awaits a release (UN R156)."""

from __future__ import annotations

from datetime import UTC, datetime, time

import plotly.express as px
import streamlit as st

from fleetota_core.errors import FleetOTAError
from fleetota_core.views.campaign_actions import release_versions
from fleetota_core.views.compliance import (
    RELEASE_STATUSES,
    as_csv,
    as_json,
    history_frame,
    release_frame,
    timeline_frame,
    vin_history,
)
from fleetota_core.views.text import chart_frame, plain
from pages import _ui

_ui.frame_guard()

st.title("Compliance")
st.caption(
    "Evidence for UN R156 audits: every version a vehicle ran, from its reported install to the next, "
    "with the campaign, the signed image hash and who approved it."
)
backend = _ui.backend()
vin_tab, release_tab = st.tabs(["Vehicle history", "Release report"])

with vin_tab, _ui.guard("the software history"):
    left, right = st.columns([2, 1])
    vin = left.text_input("VIN", key="compliance_vin", placeholder="5YJ3E1EA0PF000001").strip().upper()
    on_day = right.date_input("What ran on (UTC)", value=None, key="compliance_day")
    if not vin:
        _ui.empty_state("Enter a VIN to see its software history; copy one from the **Vehicles** page.")
    else:
        try:
            history = vin_history(vin, backend.ports)
        except FleetOTAError as exc:
            st.error(plain(exc), icon=":material/search_off:")
        else:
            if on_day is not None:
                noon = datetime.combine(on_day, time(12), tzinfo=UTC)
                running = history.running_at(noon)
                if running is None:
                    st.info(f"FleetOTA has no record of what {plain(vin)} ran on {on_day:%d %B %Y}.")
                else:
                    st.success(
                        f"On {on_day:%d %B %Y} (12:00 UTC) {plain(vin)} ran **{plain(running.version)}**: "
                        f"{plain(running.evidence)}.",
                        icon=":material/verified:",
                    )
            timeline = chart_frame(timeline_frame(history), ["version", "label"])
            fig = px.timeline(timeline, x_start="start", x_end="end", y="version", color="version",
                              hover_data={"label": True}, height=80 + 50 * len(timeline))  # fmt: skip
            fig.update_layout(showlegend=False, margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis_title=None)
            st.plotly_chart(fig, key="compliance_timeline")
            frame = history_frame(history)
            st.dataframe(frame, hide_index=True)
            d1, d2, _ = st.columns([1, 1, 4])
            d1.download_button("Download CSV", as_csv(frame), f"{vin}-software-history.csv", "text/csv",
                               icon=":material/download:")  # fmt: skip
            d2.download_button("Download JSON", as_json("vin", vin, frame), f"{vin}-software-history.json",
                               "application/json", icon=":material/download:")  # fmt: skip

with release_tab, _ui.guard("the release report"):
    versions = release_versions(backend.ports)
    if not versions:
        _ui.empty_state("No release is published yet. Publish one on the **Firmware** page.")
    else:
        version = st.selectbox("Release", versions, key="compliance_release")
        with st.spinner(f"Reading the fleet and the campaigns of {version}…"):
            report = release_frame(version, backend.ports)
        if report.empty:
            _ui.empty_state(f"No vehicle runs {plain(version)} and no campaign rolls it out yet.")
        else:
            counts = report["status"].value_counts()
            cols = st.columns(len(RELEASE_STATUSES))
            for col, status in zip(cols, RELEASE_STATUSES, strict=True):
                col.metric(status.capitalize(), f"{int(counts.get(status, 0)):,}")
            st.dataframe(report, hide_index=True)
            d1, d2, _ = st.columns([1, 1, 4])
            d1.download_button("Download CSV", as_csv(report), f"release-{version}.csv", "text/csv",
                               icon=":material/download:")  # fmt: skip
            d2.download_button("Download JSON", as_json("release", version, report),
                               f"release-{version}.json", "application/json",
                               icon=":material/download:")  # fmt: skip
