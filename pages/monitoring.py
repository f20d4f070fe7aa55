"""Monitoring: CloudWatch charts, alarm states, the dead-letter queue and quarantined records."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from fleetota_core.views.monitoring import (
    FLEET_TRENDS,
    PIPELINE_CHARTS,
    alarms_frame,
    dlq_samples,
    metric_trends,
    pipeline_health,
    quarantine_samples,
)
from fleetota_core.views.text import plain
from pages import _ui

if TYPE_CHECKING:
    import pandas as pd

STATE_ICONS = {"ALARM": "● ALARM", "OK": "○ OK", "INSUFFICIENT_DATA": "· no data"}


_ui.frame_guard()


@st.cache_data(ttl=30, show_spinner="Loading CloudWatch metrics…")
def _trends(key: str, hours: float, _backend) -> pd.DataFrame:
    return metric_trends(_backend.clients, PIPELINE_CHARTS + FLEET_TRENDS, hours)


@st.cache_data(ttl=15, show_spinner=False)
def _alarms(key: str, _backend) -> pd.DataFrame:
    return alarms_frame(_backend.clients, _backend.settings.stack_name)


@st.cache_data(ttl=15, show_spinner=False)
def _health(key: str, _backend):
    return pipeline_health(_backend.clients, _backend.resources)


@st.cache_data(ttl=30, show_spinner=False)
def _dlq(key: str, _backend) -> list[str]:
    return dlq_samples(_backend.clients, _backend.resources)


@st.cache_data(ttl=30, show_spinner=False)
def _quarantine(key: str, _backend) -> list[dict]:
    return quarantine_samples(_backend.clients, _backend.resources)


st.title("Monitoring")
backend = _ui.backend()


@_ui.live(_ui.LIVE_REFRESH_S, "pipeline health")
def live_status() -> None:
    with _ui.guard("pipeline health"):
        health = _health(backend.key, backend)
        c = st.columns(4)
        c[0].metric("Telemetry queue", f"{health.queue_visible:,}", help="messages waiting")
        c[1].metric("In flight", f"{health.queue_in_flight:,}")
        c[2].metric("Dead-letter queue", f"{health.dlq_visible:,}")
        c[3].metric("Quarantined objects", f"{health.quarantined_objects:,}")
    st.subheader("Alarms")
    with _ui.guard("alarms"):
        alarms = _alarms(backend.key, backend)
        if alarms.empty:
            _ui.empty_state(
                "No alarms are defined for this stack yet; they are provisioned from infra/template.yaml."
            )
        else:
            view = alarms.assign(state=alarms["state"].map(lambda s: STATE_ICONS.get(s, s)))
            st.dataframe(
                view[["state", "name", "metric", "threshold", "reason", "updated"]],
                hide_index=True,
                column_config={"updated": st.column_config.DatetimeColumn("Since", format="HH:mm:ss")},
            )


live_status()

st.subheader("Metrics")
hours = _ui.time_range(default="1 hour", key="mon_range")
with _ui.guard("CloudWatch metrics"):
    trends = _trends(backend.key, hours, backend)
    if trends.empty:
        _ui.empty_state("No metrics in this range yet: they appear once the pipeline processes telemetry.")
    else:
        _ui.trend_charts(trends, hours, columns=3, height=260, key="mon")

st.subheader("Rejected data")
left, right = st.columns(2)
with left, _ui.guard("the dead-letter queue"):
    st.markdown("**Dead-letter queue samples**")
    samples = _dlq(backend.key, backend)
    if not samples:
        st.caption("The dead-letter queue is empty: every telemetry notification was processed.")
    for body in samples:
        st.code(body[:4000], language="json")
with right, _ui.guard("quarantine"):
    st.markdown("**Quarantined records**")
    rejects = _quarantine(backend.key, backend)
    if not rejects:
        st.caption("Nothing quarantined: every record passed validation.")
    for obj in rejects:
        st.caption(f"{plain(obj['key'])} · {obj['size']:,} bytes · {obj['modified']:%Y-%m-%d %H:%M:%S}")
        st.code(obj["sample"][:4000], language="json")
