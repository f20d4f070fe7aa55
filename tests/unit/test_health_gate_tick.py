"""The health gate in the update-manager tick, over in-memory fakes with an injected clock.

Given a two-wave campaign with a soak, wave 1's updated vehicles (canary) are compared with the
campaign's wave-2 vehicles (control) before wave 2 opens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from campaign_world import deployments, finish, spec, tick, world_with_campaign

from fleetota_core.domain.campaign import CampaignState, WaveSpec
from fleetota_core.domain.deployment import DeploymentState
from fleetota_core.domain.health_gate import GatePhase, GateVerdict
from fleetota_core.domain.telemetry import OtaStatus
from fleetota_core.services.campaigns.actions import resume_campaign

if TYPE_CHECKING:
    from campaign_fakes import FakeWorld

    from fleetota_core.domain.campaign import Campaign

S = DeploymentState
C = CampaignState
SOAK_MIN = 60
HOUR = 3600.0


def gated_world(vehicles: int = 60, **overrides: object) -> tuple[FakeWorld, Campaign]:
    """Every vehicle reports health counters; wave 1 is a third of the fleet."""
    waves = (WaveSpec(percent=100 / 3), WaveSpec(percent=200 / 3))
    world, campaign = world_with_campaign(vehicles, spec(waves=waves, soak_minutes=SOAK_MIN, **overrides))
    for v in world.vehicles.all():
        counters(world, v.vin, observed_s=10 * HOUR, dtc=1, reboots=0, drops=2, parked_s=5 * HOUR, drain=0.4)
    return world, campaign


def counters(world: FakeWorld, vin: str, **values: float) -> None:
    names = {"observed_s": "observed_s", "dtc": "dtc", "reboots": "reboots", "drops": "link_drops"}
    names |= {"parked_s": "parked_s", "drain": "parked_drain"}
    v = world.vehicles.by_vin[vin]
    world.vehicles.put(v.model_copy(update={f"health_{names[k]}": val for k, val in values.items()}))


def live(world: FakeWorld, hours: float, extra_dtc: dict[str, int] | None = None) -> None:
    """Every vehicle lives ``hours`` more: observed and parked time grow, drain at 0.1 points/hour."""
    for v in world.vehicles.all():
        health = v.health
        assert health is not None
        counters(
            world,
            v.vin,
            observed_s=health.observed_s + hours * HOUR,
            dtc=health.dtc_count + (extra_dtc or {}).get(v.vin, 0),
            parked_s=health.parked_s + hours * HOUR / 2,
            drain=health.parked_drain_pct + 0.05 * hours,
        )


def run_wave_one(world: FakeWorld, campaign: Campaign) -> list[str]:
    """Notify and install wave 1; the installed vehicles now run 2.0.0. Their VINs."""
    tick(world)
    wave_one = [d.vin for d in deployments(world, campaign, S.NOTIFIED)]
    finish(world, campaign, OtaStatus.SUCCEEDED)
    for vin in wave_one:
        world.vehicles.put(world.vehicles.by_vin[vin].model_copy(update={"firmware_version": "2.0.0"}))
    return wave_one


def test_the_next_wave_waits_for_the_soak_and_opens_when_the_canary_is_as_healthy_as_the_control() -> None:
    world, campaign = gated_world()
    canary = run_wave_one(world, campaign)
    tick(world, 10)
    soaking = world.ports.campaign(campaign.campaign_id)
    assert soaking.current_wave == 0 and soaking.state is C.RUNNING
    assert soaking.gate is not None and soaking.gate.phase is GatePhase.SOAKING
    assert (soaking.gate.canary_vehicles, soaking.gate.control_vehicles) == (len(canary), 60 - len(canary))
    assert "soaking until" in soaking.state_reason

    live(world, 0.5)
    assert tick(world, 30 * 60).notified == 0  # half-way through the soak: wave 2 still waits
    live(world, 0.5, extra_dtc={canary[0]: 1})  # one canary fault code is noise, not a regression
    tick(world, 30 * 60)
    opened = world.ports.campaign(campaign.campaign_id)
    assert opened.current_wave == 1 and opened.state is C.RUNNING
    assert opened.gate is not None and opened.gate.phase is GatePhase.PASSED
    assert opened.gate.verdict is GateVerdict.PASS
    assert tick(world, 10).notified == 60 - len(canary)
    actions = world.audit.actions(campaign.campaign_id)
    assert actions[-3:] == ["SOAK_STARTED", "SOAK_PASSED", "WAVE_STARTED"]


def test_a_canary_with_many_more_fault_codes_pauses_the_campaign_with_the_evidence() -> None:
    world, campaign = gated_world()
    canary = run_wave_one(world, campaign)
    tick(world, 10)
    live(world, 1.0, extra_dtc=dict.fromkeys(canary[:8], 1))  # 8 of 20 set a code in the hour
    result = tick(world, SOAK_MIN * 60)

    paused = world.ports.campaign(campaign.campaign_id)
    assert paused.state is C.PAUSED and paused.current_wave == 0
    assert paused.gate is not None and paused.gate.phase is GatePhase.FAILED
    assert paused.gate.verdict is GateVerdict.MARGINAL  # one signal of four is worse: score 75
    assert "canary DTC rate 40.0 % per hour (n=20) vs control 0.00 % per hour (n=40), p<0.001" in (
        paused.state_reason
    )
    assert result.alerts == 1
    subject, alert = world.notifier.alerts[-1]
    assert subject.endswith("AUTO_PAUSED") and "canary DTC rate" in alert["detail"]
    assert world.audit.actions(campaign.campaign_id)[-1] == "AUTO_PAUSED"
    # No vehicle of wave 2 is notified, however many ticks follow.
    for _ in range(3):
        tick(world, 600)
    notified = {vin for vin, _ in world.notifier.notices}
    assert notified == set(canary)


def test_resuming_a_campaign_the_gate_paused_overrides_the_gate_for_that_wave() -> None:
    world, campaign = gated_world()
    canary = run_wave_one(world, campaign)
    tick(world, 10)
    live(world, 1.0, extra_dtc=dict.fromkeys(canary[:8], 1))
    tick(world, SOAK_MIN * 60)
    resume_campaign(campaign.campaign_id, "bob", "fault code explained: a sensor recall", world.ports)
    tick(world, 10)
    resumed = world.ports.campaign(campaign.campaign_id)
    assert resumed.current_wave == 1
    assert resumed.gate is not None and resumed.gate.phase is GatePhase.OVERRIDDEN


def test_without_health_data_the_gate_keeps_waiting_and_then_pauses_instead_of_passing() -> None:
    world, campaign = world_with_campaign(
        30, spec(waves=(WaveSpec(percent=50), WaveSpec(percent=50)), soak_minutes=SOAK_MIN)
    )  # these vehicles send no health counters
    run_wave_one(world, campaign)
    tick(world, 10)
    tick(world, SOAK_MIN * 60)
    waiting = world.ports.campaign(campaign.campaign_id)
    assert waiting.state is C.RUNNING and waiting.current_wave == 0
    assert waiting.gate is not None and waiting.gate.phase is GatePhase.WAITING_FOR_DATA
    assert "insufficient data: canary n=0" in waiting.state_reason
    for _ in range(3):
        tick(world, SOAK_MIN * 60)
    paused = world.ports.campaign(campaign.campaign_id)
    assert paused.state is C.PAUSED and paused.current_wave == 0
    assert paused.gate is not None and paused.gate.verdict is GateVerdict.INSUFFICIENT


def test_control_vehicles_are_the_same_model_and_region_and_not_on_the_release() -> None:
    world, campaign = gated_world()
    canary = run_wave_one(world, campaign)
    wave_two = [d.vin for d in deployments(world, campaign) if d.wave == 1]
    elsewhere, updated = wave_two[:5], wave_two[5:8]
    for vin in elsewhere:
        world.vehicles.put(world.vehicles.by_vin[vin].model_copy(update={"region": "eu-central"}))
    for vin in updated:  # updated by some other means: not a control any more
        world.vehicles.put(world.vehicles.by_vin[vin].model_copy(update={"firmware_version": "2.0.0"}))
    tick(world, 10)
    gate = world.ports.campaign(campaign.campaign_id).gate
    assert gate is not None
    assert (gate.canary_vehicles, gate.control_vehicles) == (len(canary), len(wave_two) - 8)
    baseline = world.soak_baselines.get(campaign.campaign_id, 0)
    assert baseline is not None and not set(baseline.control) & set(elsewhere + updated)
