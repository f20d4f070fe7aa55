""" "Launch a demo campaign": a prefilled spec, its preview, then a confirm button that creates it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from fleetota_core.errors import FleetOTAError
from fleetota_core.views.campaign_actions import create_campaign, preview_campaign
from fleetota_core.views.demo import DEMO_WAVES_PCT, demo_campaign_spec, demo_delivery, demo_release
from fleetota_core.views.text import plain
from pages import _ui
from pages._campaign_form import show_preview

if TYPE_CHECKING:
    from fleetota_core.views.backend import Backend

_SPEC = "demo_campaign_spec"  # session state: the spec being previewed, until confirmed or dismissed
_CREATED = "demo_campaign_created"  # session state: the message for the run after the campaign's creation


def demo_campaign(backend: Backend, key: str) -> str | None:
    """The demo-campaign flow; ``key`` keeps two pages' buttons apart. The new campaign's id, or None."""
    created = st.session_state.pop(_CREATED, None)
    if created:
        st.success(created, icon=":material/rocket_launch:")
    waves = " / ".join(f"{p:g} %" for p in DEMO_WAVES_PCT)
    spec = st.session_state.get(_SPEC)
    if spec is None:
        if st.button(
            "Launch a demo campaign",
            icon=":material/rocket_launch:",
            key=f"{key}_demo_start",
            help=f"Prefilled: the demo release, waves {waves}, short timeouts. You see a preview first.",
        ):
            release = demo_release(backend.ports)
            if release is None:
                st.info(
                    "No firmware release yet: publish one on the **Firmware** page (the demo fleet "
                    "publishes its demo release when it starts).",
                    icon=":material/memory:",
                )
                return None
            st.session_state[_SPEC] = spec = demo_campaign_spec(release)
        else:
            return None
    with st.container(border=True):
        st.markdown("**Demo campaign**")
        st.text(
            f"{spec.name}: release {spec.release_version} for {', '.join(spec.target.models)}; "
            f"waves {waves}; a wave opens the next at {spec.waves[0].success_threshold_pct:g} % "
            f"succeeded and pauses above {spec.waves[0].error_threshold_pct:g} % failed; "
            f"in-progress timeout {spec.in_progress_timeout_s // 60} min. {demo_delivery(spec)}"
        )
        preview = preview_campaign(spec, backend.ports)
        show_preview(preview, key=f"{key}_demo")
        operator = _ui.require_operator()
        c1, c2 = st.columns([1, 4])
        confirm = c1.button(
            "Confirm and launch",
            type="primary",
            key=f"{key}_demo_confirm",
            disabled=operator is None or preview.matched == 0,
        )
        if c2.button("Cancel", key=f"{key}_demo_cancel"):
            del st.session_state[_SPEC]
            st.rerun()
        if preview.matched == 0:
            st.warning("No vehicle matches yet: wait for the demo fleet's first readings.")
        if not confirm or operator is None:
            return None
        try:
            campaign = create_campaign(spec, operator, backend.ports, spec.description)
        except FleetOTAError as exc:
            st.error(f"Campaign not created: {plain(exc)}", icon=":material/block:")
            return None
    del st.session_state[_SPEC]
    st.session_state["campaign_selected"] = campaign.campaign_id
    st.session_state[_CREATED] = (
        f"Demo campaign created ({campaign.campaign_id}); it starts on the next update-manager tick."
    )
    return campaign.campaign_id
