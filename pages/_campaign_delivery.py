"""The campaign page's delivery panel: the two phases, and cellular vs Wi-Fi bytes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.express as px
import streamlit as st

from fleetota_core.views.campaign_delivery import bytes_by_network, cellular_spend, delivery_phases

if TYPE_CHECKING:
    from fleetota_core.domain.campaign import Campaign


def delivery_panel(campaign: Campaign) -> None:
    delivery = campaign.spec.delivery
    st.markdown(
        f"**Delivery** · install policy `{delivery.install.value}` · "
        f"downloads over `{delivery.download_networks.value}`"
    )
    spend = cellular_spend(campaign)
    m = st.columns(4)
    m[0].metric("Staged (downloaded)", f"{campaign.counters.staged:,}", help="waiting to install")
    m[1].metric("Cellular used", f"{spend['used_gb']:,.3f} GB")
    budget = spend["budget_gb"]
    m[2].metric(
        "Cellular budget",
        "none" if budget is None else f"{budget:,.3f} GB",
        help=None if budget is None else f"{spend['reserved_gb']:,.3f} GB reserved by started downloads",
    )
    m[3].metric("Cellular cost", f"{spend['cost']:,.2f}", help=f"at {delivery.cellular_cost_per_gb:g} per GB")
    left, right = st.columns(2)
    with left:
        phases = delivery_phases(campaign)
        fig = px.bar(phases, x="deployments", y="step", color="phase", orientation="h", height=260,
                     title="Download and install phases")  # fmt: skip
        fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10}, yaxis_title=None)
        st.plotly_chart(fig, key="campaign_phases")
    with right:
        by_network = bytes_by_network(campaign)
        fig = px.bar(by_network, x="network", y="gb", color="network", height=260,
                     title="Downloaded: Wi-Fi vs cellular (GB)",
                     color_discrete_map={"Wi-Fi": "#2563eb", "cellular": "#f59e0b"})  # fmt: skip
        fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10}, xaxis_title=None, showlegend=False)
        st.plotly_chart(fig, key="campaign_bytes")
