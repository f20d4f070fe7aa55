"""Simulator: start and stop the vehicle fleet simulator and watch its progress."""

from __future__ import annotations

import time

import streamlit as st

from fleetota_core.errors import FleetOTAError
from fleetota_core.views.demo import time_compression
from fleetota_core.views.local_stack import STOP_HINT, local_data_status, reset_local_data
from fleetota_core.views.simulator import (
    MAX_VEHICLES,
    SimulatorOptions,
    simulator_status,
    start_simulator,
    stop_simulator,
)
from fleetota_core.views.text import plain
from pages import _ui

_ui.frame_guard()

st.title("Simulator")
st.caption(
    "The simulator stands in for the cars: each vehicle sends batched telemetry to S3 and follows "
    "its OTA job notifications (download, verify the signature, install)."
)
backend = _ui.backend()


@_ui.live(3, "the simulator status")
def status_panel() -> None:
    status = simulator_status(_ui.STATE_DIR)
    if status.running:
        options = status.options or {}
        uptime = int(time.time() - (status.started_at or time.time()))
        st.success(
            f"Running (pid {status.pid}) for {uptime // 60} min {uptime % 60} s: "
            f"{options.get('vehicles', '?')} vehicles, every {options.get('interval_s', '?')} s, "
            f"{options.get('speed', '?')}x speed, fault rate {options.get('fault_rate', 0):.0%}.",
            icon=":material/play_circle:",
        )
        speed = time_compression(options)
        if speed:
            stamps = " Readings carry the real time." if options.get("wall_clock") else ""
            st.info(
                f"Time runs {speed:g}x faster: a simulated hour passes every {60 / speed:g} min, so "
                f"commutes, charging, maintenance windows and installs show within minutes.{stamps}",
                icon=":material/fast_forward:",
            )
    else:
        st.info("Stopped. Choose a fleet below and press **Start simulator**.", icon=":material/stop_circle:")
    if status.log_tail:
        st.markdown("**Latest output**")
        st.code("\n".join(status.log_tail), language="text")


status_panel()
current = simulator_status(_ui.STATE_DIR)
running = current.running
# While it runs, the form shows what it runs with.
last = (current.options or {}) if running else {}
operator = _ui.require_operator()

with st.form("simulator_form"):
    c1, c2, c3, c4 = st.columns(4)
    vehicles = c1.number_input(
        "Vehicles", min_value=1, max_value=MAX_VEHICLES, value=int(last.get("vehicles", 100)), step=50
    )
    interval = c2.number_input(
        "Interval (s)",
        min_value=0.5,
        max_value=3600.0,
        value=float(last.get("interval_s", 5.0)),
        step=1.0,
        help="Seconds between readings of one vehicle (simulated time)",
    )
    speed = c3.number_input(
        "Speed",
        min_value=0.1,
        max_value=1000.0,
        value=float(last.get("speed", 1.0)),
        step=1.0,
        help="Simulated seconds per real second",
    )
    fault_rate = c4.slider(
        "Fault rate",
        0.0,
        0.95,
        float(last.get("fault_rate", 0.0)),
        0.01,
        help="Share of time offline and of OTA installs that fail",
    )
    start = st.form_submit_button("Start simulator", type="primary", disabled=running or operator is None)

if start:
    try:
        pid = start_simulator(
            SimulatorOptions(
                vehicles=int(vehicles),
                interval_s=interval,
                speed=speed,
                fault_rate=fault_rate,
                # Faster than real time, readings would soon be in the future; stamp them with real time.
                wall_clock=speed > 1,
            ),
            backend.settings,
            _ui.STATE_DIR,
        )
        st.toast(f"Simulator started (pid {pid})", icon=":material/directions_car:")
        st.rerun()
    except FleetOTAError as exc:
        st.error(plain(exc))

if running:
    confirm = st.checkbox("Yes, stop the simulator (vehicles stop reporting)", key="sim_stop_confirm")
    if st.button("Stop simulator", disabled=not confirm or operator is None):
        with st.spinner("Stopping…"):
            stop_simulator(_ui.STATE_DIR)
        st.rerun()


def _dismiss_reset() -> None:
    st.session_state.pop("reset_pending", None)


@st.dialog("Reset local data", on_dismiss=_dismiss_reset)
def confirm_reset() -> None:
    st.warning(
        "Delete every vehicle, release, campaign, deployment, audit entry, telemetry object and metric "
        "of the local stack, and its saved state? A running simulator registers its vehicles again.",
        icon=":material/warning:",
    )
    yes, no = st.columns(2)
    if yes.button("Yes, reset", type="primary", key="reset_confirm"):
        _dismiss_reset()
        try:
            with st.spinner("Resetting…"):
                message = reset_local_data(backend.settings)
        except FleetOTAError as exc:
            st.error(plain(exc))
            return
        st.cache_data.clear()
        st.session_state["reset_done"] = message
        st.rerun()
    if no.button("Cancel", key="reset_cancel"):
        _dismiss_reset()
        st.rerun()


if backend.settings.is_local:
    st.divider()
    st.subheader("Local data")
    with _ui.guard("the local stack's saved state"):
        saved = local_data_status(backend.settings)
        if saved and saved.get("warning"):
            st.error(plain(saved["warning"]), icon=":material/error:")
        elif saved:
            st.caption(
                f"Saved every {saved.get('interval_s', '?')} s to `{saved['path']}`; kept across restarts."
            )
    st.caption(STOP_HINT)
    if done := st.session_state.pop("reset_done", None):
        st.success(done, icon=":material/restart_alt:")
    if st.button("Reset local data…", disabled=operator is None, key="reset_local_data"):
        st.session_state["reset_pending"] = True
    if st.session_state.get("reset_pending"):
        confirm_reset()
