"""The shared sidebar: which backend, who is operating, and the recent alerts."""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING

import streamlit as st

from fleetota_core.views.alerts import recent_alerts
from fleetota_core.views.demo import demo_fleet_options, ensure_demo_release, wait_for_fleet_file
from fleetota_core.views.local_stack import STOP_HINT
from fleetota_core.views.simulator import (
    simulator_status,
    start_simulator,
    stop_simulator,
)
from fleetota_core.views.text import plain
from pages import _ui

if TYPE_CHECKING:
    from fleetota_core.settings import Settings
    from fleetota_core.views.backend import Backend

ALERT_ICONS = {
    "auto-pause": ":orange[:material/pause_circle:]",
    "pause": ":orange[:material/pause_circle:]",
    "abort": ":red[:material/cancel:]",
    "alarm": ":red[:material/notifications_active:]",
    "completed": ":green[:material/flag:]",
    "ok": ":green[:material/check_circle:]",
}


def backend_badge(backend: Backend) -> None:
    icon = ":material/science:" if backend.settings.is_local else ":material/cloud:"
    st.markdown(f"**{icon} {backend.label}**")
    st.caption(backend.status or (backend.settings.endpoint_url or f"region {backend.settings.region}"))
    if backend.settings.is_local:
        st.caption(STOP_HINT)
    with st.expander("Resources", expanded=False):
        st.json(backend.resources.as_dict(), expanded=True)


def _auth_configured() -> bool:
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # no secrets.toml at all (StreamlitSecretNotFoundError subclasses it)
        return False


def operator_box(settings: Settings | None) -> None:
    """Local mode: the operator types a name. AWS mode: OIDC sign-in, else read-only."""
    st.divider()
    if settings is None or settings.is_local:
        default = settings.operator if settings else "operator"
        name = st.text_input("Operator", value=st.session_state.get("operator", default), key="operator_name")
        st.session_state["operator"] = name.strip() or None
        return
    if not _auth_configured():
        st.session_state["operator"] = None
        st.caption(
            ":material/lock: Read-only. Add an `[auth]` OIDC section to `.streamlit/secrets.toml` to sign in."
        )
        return
    if st.user.is_logged_in:
        st.session_state["operator"] = str(st.user.get("email") or st.user.get("name") or "operator")
        st.caption(f"Signed in as **{plain(st.session_state['operator'])}**")
        if st.button("Sign out"):
            st.logout()
    else:
        st.session_state["operator"] = None
        st.caption(":material/lock: Read-only until you sign in.")
        if st.button("Sign in", type="primary"):
            st.login()


@st.cache_data(ttl=10, show_spinner=False)
def _alerts(key: str, include_ok: bool, _backend: Backend) -> list[dict]:
    return recent_alerts(
        _backend.clients, _backend.resources, _backend.settings.stack_name, limit=8, include_ok=include_ok
    )


@_ui.live(_ui.LIVE_REFRESH_S, "alerts")
def alerts_feed() -> None:
    st.divider()
    st.markdown("**Alerts**")
    # Alarms returning to OK only on request: after a start every alarm settles into OK.
    include_ok = st.toggle("Show alarms back to OK", key="alerts_include_ok")
    with _ui.guard("alerts"):
        backend = _ui.backend()
        alerts = _alerts(backend.key, include_ok, backend)
        if not alerts:
            st.caption("No alerts yet. Auto-pauses, aborts, alarms and completed campaigns show here.")
        for alert in alerts:
            icon = ALERT_ICONS.get(alert["kind"], ":material/notifications:")
            st.caption(f"{icon} **{alert['when']:%H:%M:%S}** {plain(alert['subject'])}")


@st.cache_resource(show_spinner="Starting the demo fleet…")
def _demo_fleet(key: str, vehicles: int, _backend: Backend) -> str:
    # Once per server process: a first-time visitor sees a live fleet within a minute.
    outcome = "already running"
    if not simulator_status(_ui.STATE_DIR).running:
        pid = start_simulator(demo_fleet_options(vehicles), _backend.settings, _ui.STATE_DIR)
        # The demo fleet belongs to this server: when it exits, so does the fleet it started.
        atexit.register(_stop_demo_fleet, pid)
        outcome = "started"
    # Something to roll out: the signed demo release for this fleet, unless it is published already.
    ensure_demo_release(_backend.ports, wait_for_fleet_file(_ui.STATE_DIR))
    return outcome


def _stop_demo_fleet(pid: int) -> None:
    status = simulator_status(_ui.STATE_DIR)
    if status.running and status.pid == pid:
        stop_simulator(_ui.STATE_DIR)


def start_demo_fleet_once(backend: Backend) -> None:
    """Start the demo fleet (FLEETOTA_DEMO_FLEET vehicles, default 100; 0 turns it off) once."""
    vehicles = _ui.demo_fleet_size()
    if vehicles:
        _demo_fleet(backend.key, vehicles, backend)
