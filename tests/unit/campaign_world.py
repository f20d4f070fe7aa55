"""Builders for campaign unit tests: vehicles, a published release and a created campaign on fakes."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from campaign_fakes import FakeWorld

from fleetota_core.domain.campaign import AbortCriteria, Campaign, CampaignSpec, WaveSpec
from fleetota_core.domain.deployment import Deployment, DeploymentState, RetryPolicy
from fleetota_core.domain.eligibility import EligibilityRules, MaintenanceWindow
from fleetota_core.domain.telemetry import DriveState, NetworkType, OtaReport, OtaStatus
from fleetota_core.domain.vehicle import Vehicle
from fleetota_core.domain.vin import with_check_digit
from fleetota_core.services.campaigns.create import create_campaign
from fleetota_core.services.campaigns.releases import publish_release
from fleetota_core.services.campaigns.reports import apply_ota_reports
from fleetota_core.services.campaigns.tick import TickResult, run_tick

MODEL = "Tesla Model 3"
S = DeploymentState


def vin(n: int) -> str:
    return with_check_digit(f"5YJ3E1EA0P{n:07d}")


def vehicle(n: int, now: datetime, **overrides: Any) -> Vehicle:
    """A parked, charged, connected vehicle that reported just now."""
    fields: dict[str, Any] = {
        "vin": vin(n),
        "make": "Tesla",
        "model": MODEL,
        "model_year": 2023,
        "hw_rev": "HW4",
        "firmware_version": "1.0.0",
        "region": "us-west",
        "timezone": "UTC",
        "last_ts": now,
        "soc_pct": 80.0,
        "drive_state": DriveState.PARKED,
        "network": NetworkType.WIFI,
        "signal_dbm": -70,
        "online": True,
    }
    return Vehicle(**{**fields, **overrides})


def spec(**overrides: Any) -> CampaignSpec:
    fields: dict[str, Any] = {
        "name": "unit campaign",
        "release_version": "2.0.0",
        "waves": (WaveSpec(percent=100),),
        "retry": RetryPolicy(max_attempts=1),
        "abort": AbortCriteria(failure_pct=100, min_executed=1000),
    }
    return CampaignSpec(**{**fields, **overrides})


def window(start: str, end: str) -> EligibilityRules:
    return EligibilityRules(
        maintenance_windows=(MaintenanceWindow(start=time.fromisoformat(start), end=time.fromisoformat(end)),)
    )


def world_with_campaign(
    vehicles: int, campaign_spec: CampaignSpec, world: FakeWorld | None = None
) -> tuple[FakeWorld, Campaign]:
    world = world or FakeWorld()
    now = world.clock.now()
    for n in range(vehicles):
        world.vehicles.put(vehicle(n, now))
    publish_release(b"firmware" * 64, "2.0.0", [MODEL], [], None, "", "alice", world.ports)
    return world, create_campaign(campaign_spec, "alice", world.ports, now=now)


def tick(world: FakeWorld, after_s: float = 0) -> TickResult:
    """Advance the clock by ``after_s`` seconds and run one tick then; the vehicles kept reporting."""
    now = world.clock.advance(after_s)
    for v in world.vehicles.all():
        world.vehicles.put(v.model_copy(update={"last_ts": now}))
    return run_tick(world.ports, now)


def report(
    world: FakeWorld,
    deployment: Deployment,
    status: OtaStatus,
    error_code: str | None = None,
    at: datetime | None = None,
) -> None:
    ota = OtaReport(
        campaign_id=deployment.campaign_id,
        deployment_id=deployment.deployment_id,
        status=status,
        attempt=max(deployment.attempt, 1),
        target_version="2.0.0",
        error_code=error_code,
    )
    apply_ota_reports([(deployment.vin, ota)], world.ports, at or world.clock.now())


def deployments(world: FakeWorld, campaign: Campaign, *states: DeploymentState) -> list[Deployment]:
    found = world.deployments.for_campaign(campaign.campaign_id)
    return [d for d in found if not states or d.state in states]


def finish(world: FakeWorld, campaign: Campaign, status: OtaStatus, error_code: str | None = None) -> int:
    """Every notified deployment reports ``status``; how many did."""
    notified = deployments(world, campaign, S.NOTIFIED)
    for d in notified:
        report(world, d, status, error_code)
    return len(notified)


def later(world: FakeWorld, seconds: float) -> datetime:
    return world.clock.now() + timedelta(seconds=seconds)
