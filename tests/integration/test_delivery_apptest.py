"""The dashboard's delivery parts under Streamlit's AppTest on the local stack: the campaign form's
install and network policy, the preview's phases and cellular projection, the campaign page's panel."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from fleetota_core.domain.campaign import CampaignSpec
from fleetota_core.domain.delivery import DeliveryPolicy, InstallPolicy
from fleetota_core.domain.telemetry import OtaReport, OtaStatus
from fleetota_core.services.campaigns.create import create_campaign, list_campaigns, list_deployments
from fleetota_core.services.campaigns.releases import publish_release
from fleetota_core.services.campaigns.reports import apply_ota_reports
from fleetota_core.services.campaigns.tick import run_tick
from tests.integration.test_campaign_services import MODEL, NOW, seed_vehicles
from tests.integration.test_pages_apptest import (
    _fill_campaign_form,
    prepare_dashboard,
    render,
    seed_fleet,
)


@pytest.fixture
def dashboard(stack, monkeypatch: pytest.MonkeyPatch, tmp_path):
    return prepare_dashboard(stack, monkeypatch, tmp_path)


def metric(at, label: str):
    return next(m for m in at.metric if m.label == label)


def test_the_form_launches_a_window_wifi_only_campaign_with_a_budget_after_previewing_both_phases(
    dashboard, monkeypatch
):
    monkeypatch.setenv("FLEETOTA_OPERATOR", "carol")
    fleet = seed_fleet(dashboard, 12)
    publish_release(b"d" * 4096, "9.4.0", [fleet[0].model], [], None, "", "alice", dashboard.ports)
    at = render("pages/campaigns.py")
    _fill_campaign_form(at, name="night install", release="9.4.0", waves="100%")
    at.selectbox(key="cf_install_policy").select("window")
    at.selectbox(key="cf_download_networks").select("wifi")
    at.checkbox(key="cf_use_budget").check()
    at.number_input(key="cf_budget_gb").set_value(25.0)
    at.number_input(key="cf_cost_per_gb").set_value(3.0)
    at.checkbox(key="cf_use_cellular_after").check()
    at.time_input(key="cf_cellular_after_time").set_value(time(20, 30))
    # In two days: until then Wi-Fi only, so the projection has no cellular data at any time of day.
    at.date_input(key="cf_cellular_after_date").set_value(datetime.now(UTC).date() + timedelta(days=2))
    at.button(key="cf_preview_button").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert metric(at, "Download phase done").value
    assert metric(at, "Install phase done").value
    assert metric(at, "Projected cellular").value == "0 B"  # Wi-Fi only
    assert metric(at, "Projected cellular cost").value == "0.00"
    at.button(key="cf_launch_button").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    (campaign,) = list_campaigns(dashboard.ports)
    d = campaign.spec.delivery
    assert (d.cellular_after.hour, d.cellular_after.minute, d.cellular_after.utcoffset()) == (
        20,
        30,
        timedelta(0),
    )
    assert (d.install.value, d.download_networks.value, d.cellular_budget_gb, d.cellular_cost_per_gb) == (
        "window",
        "wifi",
        25.0,
        3.0,
    )


def test_the_campaign_page_shows_the_phases_and_wifi_vs_cellular_bytes(dashboard):
    seed_vehicles(dashboard, 4)  # parked, charged and online at NOW: the tick notifies them
    publish_release(b"f" * 1000, "9.6.0", [MODEL], [], None, "", "alice", dashboard.ports)
    spec = CampaignSpec(
        name="delivery page",
        release_version="9.6.0",
        delivery=DeliveryPolicy(
            install=InstallPolicy.WINDOW, cellular_budget_gb=10, cellular_cost_per_gb=2.5
        ),
    )
    campaign = create_campaign(spec, "alice", dashboard.ports, now=NOW)
    run_tick(dashboard.ports, NOW)
    notified = [d for d in list_deployments(campaign.campaign_id, dashboard.ports) if d.attempt]
    assert notified
    reports = [
        (
            d.vin,
            OtaReport(
                campaign_id=d.campaign_id, deployment_id=d.deployment_id, status=OtaStatus.DOWNLOADED,
                attempt=d.attempt, target_version="9.6.0", progress_pct=100,
                bytes_wifi=600_000_000, bytes_cellular=400_000_000,
            ),
        )
        for d in notified
    ]  # fmt: skip
    apply_ota_reports(reports, dashboard.ports, NOW)
    at = render("pages/campaigns.py")
    assert not at.exception, [e.value for e in at.exception]
    n = len(notified)
    assert metric(at, "Staged (downloaded)").value == f"{n:,}"
    assert metric(at, "Cellular used").value == f"{0.4 * n:,.3f} GB"
    assert metric(at, "Cellular cost").value == f"{0.4 * n * 2.5:,.2f}"
    assert metric(at, "Cellular budget").value == "10.000 GB"
    charts = {c.proto.id for c in at.get("plotly_chart")}
    assert charts, "the phases and the bytes are charted"
    bytes_chart = next(c for c in at.get("plotly_chart") if "Wi-Fi vs cellular" in c.proto.spec)
    assert '"cellular"' in bytes_chart.proto.spec and '"Wi-Fi"' in bytes_chart.proto.spec
