"""Firmware: upload and publish a signed release, and list releases with their signature status."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from fleetota_core.errors import FleetOTAError
from fleetota_core.views.firmware import (
    deltas_frame,
    publish_with_deltas,
    release_form_errors,
    releases_frame,
)
from fleetota_core.views.text import plain
from pages import _ui

if TYPE_CHECKING:
    import pandas as pd


_ui.frame_guard()


@st.cache_data(ttl=30, show_spinner="Loading releases…")
def _releases(key: str, _backend) -> pd.DataFrame:
    return releases_frame(_backend.ports)


@st.cache_data(ttl=30, show_spinner=False)
def _deltas(key: str, _backend) -> pd.DataFrame:
    return deltas_frame(_backend.ports)


st.title("Firmware")
backend = _ui.backend()
fleet = _ui.fleet_or_stop()

flash = st.session_state.pop("firmware_flash", None)
if flash:
    st.success(flash, icon=":material/check_circle:")
with _ui.guard("firmware releases"):
    releases = _releases(backend.key, backend)
    if releases.empty:
        _ui.empty_state("No firmware published yet. Upload an image below to publish the first release.")
    else:
        st.dataframe(
            releases,
            hide_index=True,
            column_config={
                "version": "Version",
                "signature": "Signature",
                "models": "Models",
                "hw_revs": "HW revisions",
                "min_from_version": "From version",
                "deltas": "Deltas from",
                "created_by": "Published by",
                "notes": "Notes",
                "size_mb": st.column_config.NumberColumn("Size", format="%.1f MB"),
                "sha256": st.column_config.TextColumn("SHA-256", width="small"),
                "created_at": st.column_config.DatetimeColumn("Published", format="YYYY-MM-DD HH:mm"),
            },
        )

    deltas = _deltas(backend.key, backend)
    if not deltas.empty:
        st.markdown("**Deltas** (a vehicle on the source version downloads the delta, then checks the "
                    "rebuilt image against the release's signed sha256)")  # fmt: skip
        st.dataframe(
            deltas,
            hide_index=True,
            column_config={
                "version": "Release",
                "from_version": "From version",
                "signature": "Signature",
                "delta_kb": st.column_config.NumberColumn("Delta", format="%.1f kB"),
                "full_kb": st.column_config.NumberColumn("Full image", format="%.1f kB"),
                "smaller_x": st.column_config.NumberColumn("Smaller", format="%.1fx"),
                "sha256": st.column_config.TextColumn("SHA-256", width="small"),
            },
        )

st.subheader("Publish a release")
operator = _ui.require_operator()
known_models = sorted(fleet["model"].unique()) if not fleet.empty else []
known_hw = sorted(fleet["hw_rev"].unique()) if not fleet.empty else []
if not known_models:
    st.caption("Models come from vehicles that have reported; start the simulator first.")
with st.form("publish_release", clear_on_submit=False):
    file = st.file_uploader("Firmware image", key="fw_file")
    err_file = st.empty()
    c1, c2 = st.columns(2)
    version = c1.text_input("Version", placeholder="2.1.0", key="fw_version")
    err_version = c1.empty()
    min_from = c2.text_input("Minimum source version (optional)", placeholder="1.0.0", key="fw_min_from")
    err_min_from = c2.empty()
    models = st.multiselect("Models", known_models, key="fw_models")
    err_models = st.empty()
    hw_revs = st.multiselect("Hardware revisions (empty: all)", known_hw, key="fw_hw")
    d1, d2 = st.columns(2)
    deltas_from = d1.number_input(
        "Deltas from the N most common versions", min_value=0, max_value=8, value=3, key="fw_deltas_from",
        help="counted among the vehicles of the chosen models; each source must be a published release",
    )  # fmt: skip
    delta_from = d2.text_input("Also a delta from (versions, comma-separated)", key="fw_delta_from")
    notes = st.text_area("Release notes", key="fw_notes")
    submitted = st.form_submit_button("Sign and publish", type="primary", disabled=operator is None)

if submitted and operator:
    data = file.getvalue() if file is not None else b""
    values = {"file": data, "version": version, "models": models, "min_from_version": min_from}
    errors = release_form_errors(values)
    slots = {"file": err_file, "version": err_version, "min_from_version": err_min_from, "models": err_models}
    for field, message in errors.items():
        slots[field].error(plain(message), icon=":material/warning:")
    if not errors:
        progress = st.progress(0.1, text="Uploading the artifact and signing its manifest with KMS…")
        try:
            release, plan = publish_with_deltas(
                data,
                version.strip(),
                models,
                hw_revs,
                min_from.strip() or None,
                notes,
                operator,
                backend.ports,
                filename=file.name if file is not None else "firmware.bin",
                allowed_models=set(known_models),
                deltas_from=int(deltas_from),
                delta_from=[v.strip() for v in delta_from.split(",") if v.strip()],
            )
        except FleetOTAError as exc:
            progress.empty()
            st.error(f"Not published: {plain(exc)}", icon=":material/block:")
        else:
            progress.progress(1.0, text="Published")
            _releases.clear()
            st.session_state["firmware_flash"] = (
                f"Published firmware {plain(release.version)} (sha256 {release.manifest.sha256[:12]}…), "
                f"signed with KMS, with {len(release.deltas)} delta(s)"
                + (f" from {', '.join(d.source_version for d in release.deltas)}" if release.deltas else "")
                + "".join(f"; no delta from {plain(v)}: {plain(why)}" for v, why in plan.skipped.items())
                + "."
            )
            st.rerun()
