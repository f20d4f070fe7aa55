"""Delivery end to end on the local stack: simulated vehicles with their day (home Wi-Fi at night,
cellular while driving), the real telemetry pipeline with signed reports, real update ticks.

A ``window`` campaign downloads in the afternoon and installs only inside the evening window; a
Wi-Fi-only campaign never uses cellular; a budget-limited campaign stops cellular at the budget, and
the bytes counted from the vehicles' signed reports match the vehicles' own tally.
"""

from __future__ import annotations

from collections import Counter
from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest

from fleetota_core.domain.campaign import AbortCriteria, CampaignSpec, TargetFilter, WaveSpec
from fleetota_core.domain.delivery import DeliveryPolicy, DownloadNetworks, InstallPolicy
from fleetota_core.domain.deployment import DeploymentState
from fleetota_core.domain.eligibility import MaintenanceWindow
from fleetota_core.services.campaigns.create import create_campaign, get_campaign, list_deployments
from fleetota_core.services.campaigns.tick import run_tick
from simulator.ota_client import OtaFaults
from tests.integration.test_campaign_e2e import (
    ANY_TIME,
    ARTIFACT,
    NEW,
    fleet_models,
    latest_metric,
    publish,
    recent_wednesday,
    world,
)

pytestmark = pytest.mark.slow
S = DeploymentState
AFTERNOON = recent_wednesday(14)  # 14:00 UTC: afternoon in Europe, morning in the Americas
LENIENT = {
    "waves": (WaveSpec(percent=100, error_threshold_pct=100),),
    "abort": AbortCriteria(failure_pct=100),
}


def test_a_window_campaign_downloads_in_the_afternoon_and_installs_only_inside_the_window(stack):
    w = world(stack, 40, OtaFaults(), seed=21, start=AFTERNOON, interval=300.0)
    publish(stack, NEW, fleet_models(w))
    # The vehicles of the fleet's most common time zone; their window opens two hours from now.
    stored = stack.ports.vehicles.get_many([v.vin for v in w.sim.vehicles])
    zone = Counter(v.timezone for v in stored.values()).most_common(1)[0][0]
    vins = tuple(vin for vin, v in stored.items() if v.timezone == zone)
    opens = (AFTERNOON.astimezone(ZoneInfo(zone)) + timedelta(hours=2)).time().replace(minute=0)
    closes = time((opens.hour + 4) % 24)
    window = MaintenanceWindow(start=opens, end=closes)
    rules = ANY_TIME.model_copy(update={"maintenance_windows": (window,), "require_parked": True})
    spec = CampaignSpec(
        name="window",
        release_version=NEW,
        target=TargetFilter(vins=vins),
        eligibility=rules,
        delivery=DeliveryPolicy(install=InstallPolicy.WINDOW),
        defer_recheck_s=300,
        max_in_flight=100,
        **LENIENT,
    )
    campaign = create_campaign(spec, "alice", stack.ports, now=w.now)
    for _ in range(18):  # 90 minutes: still before the window
        w.step()
    rows = list_deployments(campaign.campaign_id, stack.ports)
    staged = [r for r in rows if r.state is S.AWAITING_INSTALL]
    assert len(staged) >= 0.8 * len(rows), Counter(r.state for r in rows)
    reasons = Counter((r.reason or "").split(" ")[0] for r in staged)
    # Each waits for an install rule (the first that fails), never for a download one.
    assert reasons["outside"] and set(reasons) <= {"outside", "driving", "offline", "battery"}, reasons
    assert not any(w.sim.by_vin[r.vin].firmware_version == NEW for r in rows)
    assert w.listener.client.stats["INSTALLING"] == 0
    for _ in range(42):  # three and a half more hours: into the window
        w.step()
    rows = list_deployments(campaign.campaign_id, stack.ports)
    succeeded = [r for r in rows if r.state is S.SUCCEEDED]
    assert len(succeeded) >= 0.7 * len(rows), Counter(r.state for r in rows)
    for r in succeeded:
        assert r.install_at is not None and window.contains(r.install_at.astimezone(ZoneInfo(zone)))
        assert w.sim.by_vin[r.vin].firmware_version == NEW
    assert w.listener.client.stats["permits_received"] >= len(succeeded)


def test_a_wifi_only_campaign_never_downloads_over_cellular(stack):
    w = world(stack, 40, OtaFaults(), seed=22, start=AFTERNOON)
    publish(stack, NEW, fleet_models(w))
    spec = CampaignSpec(
        name="wifi only",
        release_version=NEW,
        eligibility=ANY_TIME,
        delivery=DeliveryPolicy(download_networks=DownloadNetworks.WIFI),
        defer_recheck_s=120,
        max_in_flight=100,
        **LENIENT,
    )
    campaign = create_campaign(spec, "alice", stack.ports, now=w.now)
    w.step()
    first = list_deployments(campaign.campaign_id, stack.ports)
    assert any("downloads over Wi-Fi" in (r.reason or "") for r in first), Counter(r.reason for r in first)
    for _ in range(40):
        w.step()
    done = get_campaign(campaign.campaign_id, stack.ports)
    rows = list_deployments(campaign.campaign_id, stack.ports)
    tally = w.listener.client.downloaded
    assert done.counters.bytes_cellular == 0 and tally[(campaign.campaign_id, "cellular")] == 0
    downloaded = [r for r in rows if r.bytes_wifi]
    assert downloaded and all(not r.bytes_cellular for r in rows)
    assert (
        done.counters.bytes_wifi == len(downloaded) * len(ARTIFACT) == sum(r.bytes_wifi for r in downloaded)
    )
    assert done.counters.bytes_wifi <= tally[(campaign.campaign_id, "wifi")]


def test_a_budget_limited_campaign_stops_cellular_downloads_at_the_budget(stack):
    w = world(stack, 40, OtaFaults(), seed=23, start=AFTERNOON)
    publish(stack, NEW, fleet_models(w))
    fits = 4
    budget_gb = fits * len(ARTIFACT) / 1e9 + 1e-9  # four whole images and a byte
    spec = CampaignSpec(
        name="budget",
        release_version=NEW,
        eligibility=ANY_TIME,
        delivery=DeliveryPolicy(cellular_budget_gb=budget_gb, cellular_cost_per_gb=8.0),
        defer_recheck_s=120,
        max_in_flight=100,
        **LENIENT,
    )
    campaign = create_campaign(spec, "alice", stack.ports, now=w.now)
    for _ in range(20):
        w.step()
    done = get_campaign(campaign.campaign_id, stack.ports)
    rows = list_deployments(campaign.campaign_id, stack.ports)
    granted = [r for r in rows if r.cellular_granted]
    assert len(granted) == fits
    assert done.counters.cellular_reserved == fits * len(ARTIFACT)
    budget_bytes = spec.delivery.budget_bytes
    assert 0 < done.counters.bytes_cellular <= budget_bytes
    # The bytes counted from the signed reports are the bytes the vehicles downloaded over cellular.
    assert done.counters.bytes_cellular == w.listener.client.downloaded[(campaign.campaign_id, "cellular")]
    waiting = [r for r in rows if (r.reason or "").startswith("cellular_budget")]
    assert waiting, Counter(r.reason for r in rows)
    assert all(r.state in (S.DEFERRED, S.SUCCEEDED, S.NOTIFIED, S.DOWNLOADING) for r in waiting)
    run_tick(stack.ports, w.now)  # the update manager publishes the counters as DownloadBytes
    dims = {"CampaignId": campaign.campaign_id, "Network": "cellular"}
    assert latest_metric(stack, "DownloadBytes", dims, "Maximum") == done.counters.bytes_cellular
