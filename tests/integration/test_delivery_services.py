"""The delivery adapters against the local stack: the cellular budget's conditional write on the
campaigns table, and a KMS-signed install permit that the vehicle's checks accept."""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo

from fleetota_core.adapters.campaign_store import CampaignStore
from fleetota_core.domain.campaign import CampaignSpec
from fleetota_core.domain.delivery import DeliveryPolicy, InstallPolicy
from fleetota_core.domain.deployment import DeploymentState
from fleetota_core.domain.eligibility import EligibilityRules, MaintenanceWindow
from fleetota_core.domain.firmware import load_public_key
from fleetota_core.domain.install_permit import SignedInstallPermit, permit_problem
from fleetota_core.domain.job_document import SignedJobDocument, TrustedKeys
from fleetota_core.domain.telemetry import OtaReport, OtaStatus
from fleetota_core.services.campaigns.create import create_campaign, get_campaign, list_deployments
from fleetota_core.services.campaigns.reports import apply_ota_reports
from fleetota_core.services.campaigns.tick import run_tick
from tests.integration.test_campaign_services import (
    NOW,
    drain_notifications,
    job_queue,
    publish,
    seed_vehicles,
)


def test_the_cellular_budget_is_reserved_with_a_conditional_write_that_never_overspends(stack):
    seed_vehicles(stack, 1)
    publish(stack)
    spec = CampaignSpec(name="budget", release_version="2.0.0", delivery=DeliveryPolicy(cellular_budget_gb=1))
    campaign = create_campaign(spec, "alice", stack.ports, now=NOW)
    store = CampaignStore(stack.clients.dynamodb, stack.resources.campaigns_table)
    budget, size = 1000, 300
    assert [store.reserve_cellular(campaign.campaign_id, size, budget) for _ in range(4)] == [
        True,
        True,
        True,
        False,  # 1,200 > 1,000
    ]
    assert not store.reserve_cellular(campaign.campaign_id, 2000, budget)  # larger than the whole budget
    assert store.reserve_cellular(campaign.campaign_id, -size, budget)  # a lost claim gives it back
    assert store.reserve_cellular(campaign.campaign_id, size, budget)
    assert get_campaign(campaign.campaign_id, stack.ports).counters.cellular_reserved == 900


def test_a_staged_vehicle_gets_a_kms_signed_install_permit_inside_its_window_that_it_accepts(stack):
    vins = seed_vehicles(stack, 2)  # parked, charged, on LTE, in America/Los_Angeles
    publish(stack)
    url = job_queue(stack)
    local = NOW.astimezone(ZoneInfo("America/Los_Angeles"))
    window = MaintenanceWindow(start=time(local.hour), end=time((local.hour + 2) % 24))
    spec = CampaignSpec(
        name="window",
        release_version="2.0.0",
        eligibility=EligibilityRules(maintenance_windows=(window,)),
        delivery=DeliveryPolicy(install=InstallPolicy.WINDOW),
    )
    campaign = create_campaign(spec, "alice", stack.ports, now=NOW)
    assert run_tick(stack.ports, NOW).notified == 2
    jobs = {n["vin"]: n for n in drain_notifications(stack, url)}
    reports = []
    for d in list_deployments(campaign.campaign_id, stack.ports):
        ota = OtaReport(
            campaign_id=d.campaign_id, deployment_id=d.deployment_id, status=OtaStatus.DOWNLOADED,
            attempt=d.attempt, target_version="2.0.0", progress_pct=100, bytes_cellular=1400,
        )  # fmt: skip
        reports.append((d.vin, ota))
    apply_ota_reports(reports, stack.ports, NOW)
    later = NOW + timedelta(seconds=5)
    assert run_tick(stack.ports, later).permits == 2
    permits = {n["vin"]: n for n in drain_notifications(stack, url) if n["type"] == "install"}
    assert sorted(permits) == sorted(vins)
    keys = TrustedKeys(
        image=load_public_key(stack.ports.image_signer.public_key_der()),
        director=load_public_key(stack.ports.director_signer.public_key_der()),
    )
    for vin, note in permits.items():
        body = stack.clients.s3.get_object(
            Bucket=stack.resources.firmware_bucket, Key=jobs[vin]["document_key"]
        )
        doc = SignedJobDocument.model_validate_json(body["Body"].read()).document
        assert doc.install_policy == "window"
        signed = SignedInstallPermit.model_validate(note["permit"])
        assert permit_problem(signed, keys, doc, later) is None
    rows = list_deployments(campaign.campaign_id, stack.ports)
    assert {r.state for r in rows} == {DeploymentState.AWAITING_INSTALL}
    assert all(r.install_at == later and r.bytes_cellular == 1400 for r in rows)
    assert get_campaign(campaign.campaign_id, stack.ports).counters.bytes_cellular == 2800
