"""The campaign create form: every spec field, errors under each widget, a preview, then launch."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any

import plotly.express as px
import streamlit as st

from fleetota_core.errors import FleetOTAError
from fleetota_core.views.campaign_actions import create_campaign, preview_campaign
from fleetota_core.views.campaign_form import DOWNLOAD_NETWORKS, INSTALL_POLICIES, NETWORK_CHOICES, build_spec
from fleetota_core.views.campaigns import reason_group
from fleetota_core.views.fleet import version_key
from fleetota_core.views.text import plain
from pages import _ui

if TYPE_CHECKING:
    import pandas as pd

    from fleetota_core.views.backend import Backend
    from fleetota_core.views.campaign_actions import CampaignPreview

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"


def show_preview(preview: CampaignPreview, key: str = "preview") -> None:
    st.markdown("**Preview: what launching now would do**")
    c = st.columns(4)
    c[0].metric("Matched vehicles", f"{preview.matched:,}")
    c[1].metric("Eligible now", f"{preview.eligible_now:,}", help="the rest are deferred until eligible")
    saved = f"-{_bytes(preview.bytes_saved)} with deltas" if preview.bytes_saved else None
    c[2].metric(
        "Download volume",
        _bytes(preview.download_bytes),
        delta=saved,
        delta_color="inverse",
        help=f"{preview.delta_vehicles:,} vehicles get a delta; full images for all: "
        f"{_bytes(preview.full_image_bytes)}",
    )
    c[3].metric("Estimated duration", _duration(preview.estimated_duration_s), help=preview.assumptions)
    _show_delivery(preview)
    waves = [{"wave": f"Wave {i + 1}", "vehicles": n} for i, n in enumerate(preview.wave_sizes)]
    if waves:
        fig = px.bar(waves, x="wave", y="vehicles", text="vehicles", title="Wave sizes", height=240)
        fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10}, xaxis_title=None)
        st.plotly_chart(fig, key=f"{key}_waves")
    notes = [f"{n:,} excluded: {plain(why)}" for why, n in preview.excluded.items()]
    notes += [
        f"{n:,} deferred for now: {plain(reason_group(why))}" for why, n in preview.deferred_reasons.items()
    ]
    if notes:
        st.caption(" · ".join(notes))


def _delivery_fields(slots: dict[str, Any]) -> dict[str, Any]:
    """Install policy and network policy widgets (inside the form); their raw values."""
    st.markdown("**Delivery: when to install, which networks to download over**")
    i1, i2, i3 = st.columns(3)
    values: dict[str, Any] = {
        "install_policy": i1.selectbox(
            "Install policy", INSTALL_POLICIES, key="cf_install_policy",
            help="immediate: download and install at once; window: download now, install in the "
            "maintenance window; consent: the driver accepts, else the window rule after the deadline",
        ),
        "consent_deadline_h": i2.number_input("Consent deadline (h)", 0.1, 336.0, 24.0, key="cf_consent_h"),
        "download_networks": i3.selectbox(
            "Download networks", DOWNLOAD_NETWORKS, key="cf_download_networks", help="wifi: never cellular"
        ),
    }  # fmt: skip
    slots["consent_deadline_h"] = i2.empty()
    slots["delivery"] = i3.empty()
    n1, n2, n3, n4 = st.columns(4)
    values["use_cellular_budget"] = n1.checkbox("Cellular budget", key="cf_use_budget")
    values["cellular_budget_gb"] = n2.number_input("Budget (GB)", 0.0, 1_000_000.0, 100.0, key="cf_budget_gb")
    slots["cellular_budget_gb"] = n2.empty()
    values["cellular_cost_per_gb"] = n3.number_input("Cost per GB", 0.0, 1000.0, 2.0, key="cf_cost_per_gb")
    slots["cellular_cost_per_gb"] = n3.empty()
    values["use_cellular_max_mb"] = n4.checkbox(
        "Wi-Fi only: cellular for small images", key="cf_use_max_mb", help="up to the size below"
    )
    values["cellular_max_mb"] = n4.number_input("Up to (MB)", 1.0, 1_000_000.0, 50.0, key="cf_max_mb")
    slots["cellular_max_mb"] = n4.empty()
    c1, c2, c3 = st.columns(3)
    after = c1.checkbox("Wi-Fi only: cellular after a deadline", key="cf_use_cellular_after")
    day = c2.date_input("Deadline date (UTC)", key="cf_cellular_after_date")
    at = c3.time_input("Deadline time (UTC)", time(18, 0), key="cf_cellular_after_time")
    values["cellular_after"] = datetime.combine(day, at, tzinfo=UTC) if after else None
    return values


def _show_delivery(preview: CampaignPreview) -> None:
    forecast = preview.delivery
    if forecast is None:
        return
    download, install = forecast.phases
    c = st.columns(4)
    c[0].metric("Download phase done", _duration(download["after_s"]), help=download["expected_done"][:16])
    c[1].metric(
        "Install phase done", _duration(install["after_s"]),
        help=f"{install['expected_done'][:16]} UTC; install policy {forecast.install_policy}",
    )  # fmt: skip
    c[2].metric(
        "Projected cellular", _bytes(forecast.projected_cellular_bytes),
        help=f"{forecast.cellular_vehicles_now:,} vehicles on cellular now; Wi-Fi "
        f"{_bytes(forecast.projected_wifi_bytes)}; capped at the budget",
    )  # fmt: skip
    c[3].metric("Projected cellular cost", f"{forecast.projected_cellular_cost:,.2f}")


def campaign_form(backend: Backend, fleet: pd.DataFrame, releases: list[str]) -> None:
    operator = _ui.require_operator()
    models = sorted(fleet["model"].unique()) if not fleet.empty else []
    hw_revs = sorted(fleet["hw_rev"].unique()) if not fleet.empty else []
    regions = sorted(fleet["region"].unique()) if not fleet.empty else []
    versions = sorted(fleet["firmware_version"].unique(), key=version_key) if not fleet.empty else []
    slots: dict[str, Any] = {}
    with st.form("campaign_form"):
        c1, c2, c3 = st.columns([2, 1, 1])
        name = c1.text_input("Name", key="cf_name", placeholder="Spring 2.1.0 rollout")
        slots["name"] = c1.empty()
        release = c2.selectbox("Firmware release", releases, index=None, key="cf_release",
                               placeholder="choose a release")  # fmt: skip
        slots["release_version"] = c2.empty()
        kind = c3.selectbox("Kind", ["update", "rollback"], key="cf_kind",
                            help="rollback allows installing an older version")  # fmt: skip
        description = st.text_input("Description / reason", key="cf_description")

        st.markdown("**Target** (empty filters match every vehicle)")
        t1, t2, t3, t4 = st.columns(4)
        f_models = t1.multiselect("Models", models, key="cf_models")
        slots["models"] = t1.empty()
        f_hw = t2.multiselect("Hardware revisions", hw_revs, key="cf_hw")
        slots["hw_revs"] = t2.empty()
        f_regions = t3.multiselect("Regions", regions, key="cf_regions")
        slots["regions"] = t3.empty()
        f_versions = t4.multiselect("Current versions", versions, key="cf_versions")
        slots["current_versions"] = t4.empty()
        vins = st.text_area(
            "Only these VINs (optional, comma or newline separated)", key="cf_vins", height=68
        )
        slots["vins"] = st.empty()

        st.markdown("**Waves and thresholds**")
        w1, w2, w3, w4 = st.columns(4)
        waves = w1.text_input("Waves", "5%, 25%, 70%", key="cf_waves", help="percentages or vehicle counts")
        slots["waves"] = w1.empty()
        success_pct = w2.number_input("Wave success threshold %", 0.0, 100.0, 90.0, key="cf_success")
        error_pct = w3.number_input("Wave error threshold %", 0.0, 100.0, 10.0, key="cf_error")
        max_in_flight = w4.number_input("Max in flight", 1, 100_000, 100, key="cf_max_in_flight")
        slots["max_in_flight"] = w4.empty()
        a1, a2, a3, a4 = st.columns(4)
        abort_pct = a1.number_input("Abort at failure %", 0.0, 100.0, 25.0, key="cf_abort_pct")
        slots["abort_failure_pct"] = a1.empty()
        abort_min = a2.number_input("…after at least N executed", 1, 1_000_000, 10, key="cf_abort_min")
        slots["abort_min_executed"] = a2.empty()
        retries = a3.number_input("Max attempts", 1, 20, 3, key="cf_retries")
        slots["retry_max_attempts"] = a3.empty()
        backoff = a4.number_input("Retry backoff (s)", 0.0, 86_400.0, 60.0, key="cf_backoff")
        slots["retry_backoff_s"] = a4.empty()

        st.markdown("**Eligibility and schedule**")
        e1, e2, e3, e4 = st.columns(4)
        min_soc = e1.number_input("Min battery %", 0.0, 100.0, 30.0, key="cf_min_soc")
        slots["min_soc_pct"] = e1.empty()
        min_signal = e2.number_input("Min signal (dBm)", -140, -20, -110, key="cf_min_signal")
        slots["min_signal_dbm"] = e2.empty()
        networks = e3.multiselect("Networks", NETWORK_CHOICES,
                                  default=["WIFI", "5G", "LTE"], key="cf_networks")  # fmt: skip
        slots["networks"] = e3.empty()
        timeout_min = e4.number_input("In-progress timeout (min)", 1.0, 10_080.0, 60.0, key="cf_timeout")
        slots["timeout_min"] = e4.empty()
        p1, p2, p3 = st.columns(3)
        require_parked = p1.checkbox("Only parked vehicles", True, key="cf_parked")
        continuous = p3.checkbox(
            "Continuous: vehicles that match later join",
            key="cf_continuous",
            help="Newly provisioned vehicles, or vehicles that reach the source version, join the open "
            "wave until an operator finishes the campaign's enrolment.",
        )
        critical = p2.checkbox(
            "Critical: wait for a second operator's approval",
            key="cf_critical",
            help="Four-eyes: no vehicle is notified until a different operator approves it.",
        )
        s1, s2, s3, s4 = st.columns(4)
        use_window = s1.checkbox("Maintenance window", key="cf_use_window", help="vehicle local time")
        window_start = s2.time_input("From", time(1, 0), key="cf_window_start")
        window_end = s3.time_input("To", time(5, 0), key="cf_window_end")
        window_days = s4.multiselect("Days", DAYS, default=list(DAYS), key="cf_window_days")
        slots["window"] = st.empty()
        d1, d2, d3 = st.columns(3)
        schedule = d1.checkbox("Start later", key="cf_schedule")
        start_date = d2.date_input("Start date (UTC)", key="cf_start_date")
        start_time = d3.time_input("Start time (UTC)", time(2, 0), key="cf_start_time")
        slots["start_at"] = st.empty()
        delivery = _delivery_fields(slots)
        slots["form"] = st.empty()
        b1, b2 = st.columns([1, 5])
        preview_clicked = b1.form_submit_button("Preview", key="cf_preview_button")
        launch_clicked = b2.form_submit_button(
            "Launch campaign", type="primary", key="cf_launch_button", disabled=operator is None
        )

    if not (preview_clicked or launch_clicked):
        st.caption("Fill in the form and press **Preview** to see what the campaign would do.")
        return
    values = {
        "name": name, "release_version": release, "kind": kind, "description": description,
        "models": f_models, "hw_revs": f_hw, "regions": f_regions, "current_versions": f_versions,
        "vins": vins, "waves": waves, "success_pct": success_pct, "error_pct": error_pct,
        "max_in_flight": int(max_in_flight), "abort_failure_pct": abort_pct,
        "abort_min_executed": int(abort_min),
        "retry_max_attempts": int(retries), "retry_backoff_s": backoff, "min_soc_pct": min_soc,
        "min_signal_dbm": int(min_signal), "networks": networks, "timeout_min": timeout_min,
        "require_parked": require_parked, "critical": critical, "continuous": continuous,
        "use_window": use_window,
        "window_start": window_start, "window_end": window_end, "window_days": window_days,
        "start_at": datetime.combine(start_date, start_time, tzinfo=UTC) if schedule else None,
        **delivery,
    }  # fmt: skip
    spec, errors = build_spec(values)
    for field, message in errors.items():
        slots.get(field, slots["form"]).error(plain(message), icon=":material/warning:")
    if spec is None:
        st.error(f"Fix the {len(errors)} highlighted field(s) above.", icon=":material/warning:")
        return
    try:
        with st.spinner("Matching vehicles and checking eligibility…"):
            preview = preview_campaign(spec, backend.ports)
    except FleetOTAError as exc:
        st.error(f"Cannot preview: {plain(exc)}", icon=":material/block:")
        return
    show_preview(preview)
    if not launch_clicked or operator is None:
        return
    try:
        with st.spinner(f"Creating {preview.matched:,} deployments…"):
            campaign = create_campaign(spec, operator, backend.ports, description)
    except FleetOTAError as exc:
        st.error(f"Campaign not created: {plain(exc)}", icon=":material/block:")
        return
    st.session_state["campaign_selected"] = campaign.campaign_id
    if campaign.state.value == "AWAITING_APPROVAL":
        st.info(
            f"Campaign **{plain(spec.name)}** created ({campaign.campaign_id}). It waits for approval: "
            f"{plain(campaign.state_reason)}. A different operator approves it on the **Campaigns** tab.",
            icon=":material/approval:",
        )
        return
    st.success(
        f"Campaign **{plain(spec.name)}** created ({campaign.campaign_id}); it starts on the next tick.",
        icon=":material/rocket_launch:",
    )
