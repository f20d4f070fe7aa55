"""Campaigns: the list with progress, a detail view with actions, and the create form."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from fleetota_core.errors import FleetOTAError
from fleetota_core.views.campaign_actions import (
    ACTIONS,
    APPROVAL_ACTIONS,
    CONTINUOUS_ACTIONS,
    campaign_history,
    get_campaign,
    release_versions,
)
from fleetota_core.views.campaigns import (
    campaign_summary,
    delivery,
    deployments_frame,
    fallback_reasons,
    funnel,
    gate_comparison,
    reasons,
    wave_progress,
)
from fleetota_core.views.text import chart_frame, plain
from pages import _ui
from pages._campaign_delivery import delivery_panel
from pages._campaign_form import _bytes, campaign_form
from pages._demo_campaign import demo_campaign

STATE_ICONS = {
    "DRAFT": ":material/edit_note:",
    "AWAITING_APPROVAL": ":material/approval:",
    "SCHEDULED": ":material/schedule:",
    "RUNNING": ":material/play_circle:",
    "PAUSED": ":material/pause_circle:",
    "COMPLETED": ":material/check_circle:",
    "ABORTED": ":material/cancel:",
    "CANCELLED": ":material/block:",
}
DETAIL_REFRESH_S = 5
LIST_COLUMNS = [
    "name", "state", "release", "progress", "total", "succeeded", "failed", "in_flight",
    "current_wave", "waves", "continuous", "joined_later", "created_by", "created_at", "campaign_id",
]  # fmt: skip


_ui.frame_guard()


@st.cache_data(ttl=DETAIL_REFRESH_S, show_spinner=False)
def _summary(key: str, _backend) -> pd.DataFrame:
    return campaign_summary(_backend.ports)


@st.cache_data(ttl=30, show_spinner=False)
def _release_versions(key: str, _backend) -> list[str]:
    return release_versions(_backend.ports)


# Reasons need every deployment of the campaign (one query, ~4k items/s on moto): refreshed less often
# than the counters, which live on the campaign item.
@st.cache_data(ttl=30, show_spinner=False)
def _deployments(key: str, campaign_id: str, _backend) -> pd.DataFrame:
    return deployments_frame(_backend.ports, campaign_id)


def _clear() -> None:
    for fn in (_summary, _deployments):
        fn.clear()


st.title("Campaigns")
backend = _ui.backend()
list_tab, new_tab = st.tabs(["Campaigns", "New campaign"])


@_ui.live(DETAIL_REFRESH_S, "campaigns")
def campaign_list() -> None:
    with _ui.guard("campaigns"):
        summary = _summary(backend.key, backend)
        if summary.empty:
            _ui.empty_state(
                "No campaigns yet. Publish a firmware release on the **Firmware** page, then create a "
                "campaign in the **New campaign** tab."
            )
            return
        st.dataframe(
            summary[LIST_COLUMNS],
            hide_index=True,
            column_config={
                "progress": st.column_config.ProgressColumn("Progress", format="percent", max_value=1),
                "name": "Name",
                "state": "State",
                "release": "Release",
                "total": "Vehicles",
                "succeeded": "Succeeded",
                "failed": "Failed",
                "in_flight": "In flight",
                "current_wave": "Wave",
                "waves": "Waves",
                "continuous": st.column_config.CheckboxColumn("Continuous"),
                "joined_later": "Joined later",
                "created_by": "Created by",
                "created_at": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm"),
                "campaign_id": "ID",
            },
        )


def approval_queue() -> None:
    """Campaigns that wait for a second operator (four-eyes), with who asked and why they wait."""
    with _ui.guard("the approval queue"):
        summary = _summary(backend.key, backend)
        waiting = summary[summary["state"] == "AWAITING_APPROVAL"] if not summary.empty else summary
        if waiting.empty:
            return
        with st.container(border=True):
            st.markdown(f"**:material/approval: Waiting for approval ({len(waiting)})**")
            for row in waiting.itertuples():
                st.markdown(
                    f"- **{plain(row.name)}** ({plain(row.campaign_id)}): {row.total:,} vehicles, release "
                    f"{plain(row.release)}, asked by {plain(row.created_by)}: {plain(row.state_reason)}"
                )
            st.caption(
                "Open a campaign below and press **Approve** or **Reject**. A different operator than "
                "the one who created it must decide; both names and the reason go to the audit trail."
            )


def _act(campaign_id: str, action: str, reason: str) -> None:
    label, fn, _, _ = ACTIONS[action]
    operator = _ui.operator()
    if operator is None:
        st.error("Sign in as an operator to change campaigns.")
        return
    try:
        result = fn(campaign_id, operator, reason or f"{label.lower()} from the dashboard", backend.ports)
    except FleetOTAError as exc:
        st.error(f"{label} failed: {plain(exc)}", icon=":material/block:")
        return
    _clear()
    st.session_state["campaign_flash"] = f"{label}: campaign {result.campaign_id} is now {result.state.value}"
    if action == "rollback":
        st.session_state["campaign_selected"] = result.campaign_id
    st.rerun()


def _dismiss() -> None:
    st.session_state.pop("pending_action", None)


@st.dialog("Confirm", on_dismiss=_dismiss)
def confirm(campaign_id: str, action: str) -> None:
    label = ACTIONS[action][0]
    st.warning(
        f"{label} campaign **{campaign_id}**? This changes what vehicles do.", icon=":material/warning:"
    )
    reason = st.text_input("Reason (recorded in the audit trail)", key=f"confirm_reason_{action}")
    yes, no = st.columns(2)
    if yes.button(f"Yes, {label.lower()}", type="primary", key=f"confirm_{action}"):
        _dismiss()
        _act(campaign_id, action, reason)
    if no.button("Cancel", key=f"cancel_{action}"):
        _dismiss()
        st.rerun()


def action_bar(campaign_id: str, state: str, enrolling: bool = False) -> None:
    shown = {
        a: spec
        for a, spec in ACTIONS.items()
        if (a not in APPROVAL_ACTIONS or state == "AWAITING_APPROVAL")
        and (a not in CONTINUOUS_ACTIONS or enrolling)
    }
    cols = st.columns(len(shown))
    for col, (action, (label, _, dangerous, allowed)) in zip(cols, shown.items(), strict=True):
        disabled = state not in allowed or _ui.operator() is None
        if col.button(label, key=f"act_{action}", disabled=disabled, type="secondary", width="stretch"):
            if dangerous:
                # Kept in the session so the dialog survives reruns until confirmed or dismissed.
                st.session_state["pending_action"] = (campaign_id, action)
            else:
                _act(campaign_id, action, "")
    pending = st.session_state.get("pending_action")
    if pending and pending[0] == campaign_id:
        confirm(*pending)


def delta_panel(campaign) -> None:
    """Deltas against full images: what the finished attempts downloaded and why any fell back."""
    tally = delivery(campaign)
    if tally is None:
        return
    st.markdown("**Delta updates**")
    d = st.columns(4)
    d[0].metric("From deltas", f"{tally.from_delta:,}", help="finished attempts that installed a delta")
    d[1].metric("Full images", f"{tally.from_full:,}", help="including fallbacks from a delta")
    d[2].metric("Delta fallbacks", f"{tally.fallback_count:,}")
    saved = tally.saved_bytes / tally.full_image_bytes if tally.full_image_bytes else 0.0
    d[3].metric("Bytes saved", _bytes(tally.saved_bytes), delta=f"{saved:.0%} of full images",
                delta_color="off", help=f"downloaded {_bytes(tally.downloaded_bytes)}")  # fmt: skip
    if tally.fallbacks:
        st.dataframe(fallback_reasons(tally), hide_index=True)


def health_gate(campaign) -> None:
    """The gate's verdict and evidence, and canary vs control per signal as a chart."""
    if campaign.spec.soak_minutes is None:
        return
    gate = campaign.gate
    st.markdown("**Health gate**")
    if gate is None:
        st.caption(f"Soak {campaign.spec.soak_minutes:g} min after each wave; no wave has soaked yet.")
        return
    st.markdown(plain(gate.summary()))
    st.caption(
        f"Soak {gate.soak_started_at:%Y-%m-%d %H:%M} to {gate.soak_ends_at:%H:%M} UTC: "
        f"{gate.canary_vehicles} updated vehicles (canary) vs {gate.control_vehicles} not updated (control), "
        "same model and region"
    )
    compared = gate_comparison(gate).dropna(subset=["value"])
    if compared.empty:
        return
    fig = px.bar(
        compared, x="group", y="value", color="group", facet_col="signal", facet_col_spacing=0.06,
        hover_data=["n", "verdict", "p_value"], height=300,
        color_discrete_map={"canary": "#dc2626", "control": "#64748b"},
    )  # fmt: skip
    fig.update_yaxes(matches=None, showticklabels=True, title=None)
    fig.update_xaxes(title=None)
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10}, showlegend=False, xaxis_title=None)
    st.plotly_chart(fig, key="campaign_gate")


@_ui.live(DETAIL_REFRESH_S, "the campaign")
def campaign_detail(campaign_id: str) -> None:
    with _ui.guard("the campaign"):
        campaign = get_campaign(campaign_id, backend.ports)
        c = campaign.counters
        icon = STATE_ICONS.get(campaign.state.value, "")
        st.markdown(f"### {icon} {plain(campaign.spec.name)} · `{campaign.state.value}`")
        st.caption(
            f"{plain(campaign.campaign_id)} · release {plain(campaign.release.version)} · "
            f"{campaign.spec.kind} · created by {plain(campaign.created_by)} at "
            f"{campaign.created_at:%Y-%m-%d %H:%M} UTC"
            + (f" · {plain(campaign.state_reason)}" if campaign.state_reason else "")
        )
        m = st.columns(5)
        m[0].metric("Vehicles", f"{campaign.total:,}")
        m[1].metric("Succeeded", f"{c.succeeded:,}")
        m[2].metric("Failed", f"{c.failed:,}")
        m[3].metric("In flight", f"{c.in_flight:,}")
        rate = c.success_rate()
        m[4].metric("Success rate", "—" if rate is None else f"{rate:.1f} %")
        if campaign.spec.continuous:
            joined = f"{c.joined:,} joined after creation"
            if campaign.enrolling:
                st.info(
                    f"Continuous: vehicles that match later join the open wave · {joined}",
                    icon=":material/all_inclusive:",
                )
            else:
                st.caption(f"Continuous, enrolment finished · {joined}")
        finished = c.finished / campaign.total if campaign.total else 0.0
        st.progress(min(finished, 1.0), text=f"{finished:.0%} of deployments finished")
        delta_panel(campaign)

        waves = wave_progress(campaign)
        left, right = st.columns(2)
        with left:
            st.markdown("**Waves**")
            for row in waves.itertuples():
                done = (row.succeeded + row.failed) / row.size if row.size else 1.0
                text = f"Wave {row.wave} ({row.status}): {row.succeeded}/{row.size} succeeded"
                text += f", {row.failed} failed" if row.failed else ""
                text += f", {row.joined} joined later" if row.joined else ""
                st.progress(min(done, 1.0), text=text)
        with right:
            stages = funnel(c)
            fig = px.funnel(stages, x="deployments", y="stage", title="Deployment funnel", height=300)
            fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10})
            st.plotly_chart(fig, key="campaign_funnel")

        health_gate(campaign)
        delivery_panel(campaign)

        deps = _deployments(backend.key, campaign_id, backend)
        why = reasons(deps)
        left, right = st.columns(2)
        with left:
            st.markdown("**Failure, deferral and waiting reasons**")
            if why.empty:
                st.caption("No failures, deferrals or vehicles waiting to install so far.")
            else:
                why = chart_frame(why, ["reason"])
                fig = px.bar(why, x="deployments", y="reason", color="kind", orientation="h", height=260,
                             color_discrete_map={"failed": "#dc2626", "deferred": "#f59e0b",
                                                 "waiting to install": "#60a5fa"})  # fmt: skip
                fig.update_layout(margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis_title=None)
                st.plotly_chart(fig, key="campaign_reasons")
        with right:
            st.markdown("**Timeline**")
            history = pd.DataFrame(campaign_history(campaign_id, backend.ports))
            if history.empty:
                st.caption("No events yet.")
            else:
                stamps = history["event_ts"].str.split("#").str[0]
                history["when"] = pd.to_datetime(stamps, utc=True, errors="coerce")
                st.dataframe(
                    history[["when", "action", "operator", "reason"]],
                    hide_index=True,
                    column_config={"when": st.column_config.DatetimeColumn("When", format="HH:mm:ss")},
                )


with list_tab:
    flash = st.session_state.pop("campaign_flash", None)
    if flash:
        st.success(flash, icon=":material/check_circle:")
    with _ui.guard("the demo campaign"):
        if demo_campaign(backend, "campaigns"):
            _clear()
            st.rerun()
    approval_queue()
    campaign_list()
    with _ui.guard("campaigns"):
        summary = _summary(backend.key, backend)
        if not summary.empty:
            ids = summary["campaign_id"].tolist()
            names = dict(zip(summary["campaign_id"], summary["name"], strict=True))
            selected = st.session_state.get("campaign_selected")
            chosen = st.selectbox(
                "Open campaign",
                ids,
                index=ids.index(selected) if selected in ids else 0,
                format_func=lambda cid: f"{names[cid]} ({cid})",
                key="campaign_pick",
            )
            st.session_state["campaign_selected"] = chosen
            row = summary.loc[summary["campaign_id"] == chosen].iloc[0]
            action_bar(chosen, row["state"], bool(row["enrolling"]))
            campaign_detail(chosen)

with new_tab, _ui.guard("the campaign form"):
    releases = _release_versions(backend.key, backend)
    if not releases:
        _ui.empty_state(
            "Publish a firmware release on the **Firmware** page first; campaigns roll out releases."
        )
    campaign_form(backend, _ui.fleet(), releases)
