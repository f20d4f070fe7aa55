"""The health gate end to end on the local stack: simulated vehicles with health counters, the real
telemetry processor, the update-manager tick, soak baselines in the ledger table.

Time is simulated as in test_campaign_e2e.py: each step is two minutes of fleet time (one reading
per vehicle), then the queue drains through the processor and one tick runs at that time, so a
20-minute soak takes 10 steps.
"""

from __future__ import annotations

import pytest
from test_campaign_e2e import ANY_TIME, NEW, START, OtaWorld, fleet_models, publish

from fleetota_core.adapters.soak_baselines import SoakBaselineStore
from fleetota_core.adapters.telemetry_store import TelemetryStore
from fleetota_core.domain.campaign import CampaignSpec, CampaignState, WaveSpec
from fleetota_core.domain.deployment import DeploymentState
from fleetota_core.domain.health_gate import MIN_SAMPLES, GatePhase, GateVerdict
from fleetota_core.domain.vehicle_health import HealthReading, SoakBaseline
from fleetota_core.services.campaigns.create import create_campaign, get_campaign, list_deployments
from simulator.fleet import generate_fleet
from simulator.health import ReleaseFaults
from simulator.job_listener import open_job_listener
from simulator.ota_client import OtaFaults
from simulator.simulation import FleetSimulation
from simulator.uploader import BatchUploader, S3Sink
from simulator.vehicle_keys import register_fleet

pytestmark = pytest.mark.slow
SOAK_MINUTES = 20
INTERVAL_S = 120.0


def gated_spec() -> CampaignSpec:
    return CampaignSpec(
        name="gated",
        release_version=NEW,
        waves=(WaveSpec(percent=40), WaveSpec(percent=60)),
        eligibility=ANY_TIME,
        soak_minutes=SOAK_MINUTES,
    )


def gated_world(stack, *bad: str, vehicles: int = 70, seed: int = 21) -> OtaWorld:
    """test_campaign_e2e's world, two minutes a step, the vehicles on ``NEW`` suffering ``bad``."""
    faults = ReleaseFaults()
    for text in bad:
        faults.add(text)  # as --bad-release does
    fleet = generate_fleet(vehicles, seed)
    for v in fleet:
        v.soc = max(v.soc, 60.0)
    register_fleet(stack.clients, stack.resources, fleet)
    uploader = BatchUploader(
        S3Sink(TelemetryStore(stack.resources.telemetry_bucket, stack.clients.s3)), 1000, "g"
    )
    sim = FleetSimulation(
        fleet, uploader, start=START.timestamp(), interval=INTERVAL_S, seed=seed, release_faults=faults
    )
    listener = open_job_listener(
        stack.clients, stack.resources, f"g{seed}", OtaFaults(), seed=seed, install_s=60
    )
    sim.ota_client = listener
    w = OtaWorld(stack, sim, listener)
    w.step(tick=False)
    publish(stack, NEW, fleet_models(w))
    return w


def run_until(w: OtaWorld, campaign_id: str, done, minutes: int):
    for _ in range(minutes):
        w.step()
        campaign = get_campaign(campaign_id, w.stack.ports)
        if done(campaign):
            return campaign
    return get_campaign(campaign_id, w.stack.ports)


def test_a_bad_release_pauses_after_wave_one_with_the_evidence_and_notifies_no_later_wave(stack):
    # A fault code at 300 % per hour (effects of one version add up; one is at most 100 %): ~63 % of
    # the canary report one within the 20-minute soak. At 100 % per hour (~28 %) the judge's own
    # compare() missed the DTC signal in 30-75 % of simulated canaries of this size (28 vs 14-30
    # controls, 2,000 draws each), and in one CI run the parked drain missed as well, so that run's
    # campaign completed: a weak fault in a small canary is rightly not significant. At 300 % it
    # missed in 0.2 % at worst.
    dtc = f"{NEW}:dtc=P0A80@100"
    w = gated_world(stack, dtc, dtc, dtc, f"{NEW}:parked_drain=3")
    campaign = create_campaign(gated_spec(), "alice", stack.ports, now=w.now)
    paused = run_until(
        w,
        campaign.campaign_id,
        lambda c: c.state is not CampaignState.RUNNING and c.gate,
        SOAK_MINUTES // 2 + 12,
    )
    # On failure, say what the judge saw: each signal's groups, means and p-value.
    seen = paused.gate and [m.model_dump(mode="json") for m in paused.gate.metrics]
    assert paused.state is CampaignState.PAUSED and paused.current_wave == 0, (paused.state_reason, seen)
    gate = paused.gate
    assert gate is not None and gate.phase is GatePhase.FAILED
    assert gate.verdict in (GateVerdict.FAIL, GateVerdict.MARGINAL)
    assert gate.canary_vehicles >= 15 and gate.control_vehicles >= 15
    # The evidence names the worst signal: both faults of this release are regressions.
    reason = paused.state_reason
    assert ("canary DTC rate" in reason or "canary parked battery drain" in reason) and "vs control" in reason
    assert "p<0.0" in paused.state_reason
    later = {r.vin for r in list_deployments(campaign.campaign_id, stack.ports) if r.wave > 0}
    for _ in range(3):  # paused: more ticks notify nobody of wave 2
        w.step()
    assert later and not later & {vin for vin, _ in w.listener.client.notified}
    rows = list_deployments(campaign.campaign_id, stack.ports)
    assert all(r.state is DeploymentState.PENDING for r in rows if r.wave > 0)


def test_a_good_release_passes_the_soak_and_opens_wave_two(stack):
    w = gated_world(stack)
    campaign = create_campaign(gated_spec(), "alice", stack.ports, now=w.now)
    opened = run_until(
        w,
        campaign.campaign_id,
        lambda c: c.current_wave == 1 or c.state is not CampaignState.RUNNING,
        SOAK_MINUTES // 2 + 12,
    )
    assert opened.state is CampaignState.RUNNING and opened.current_wave == 1, opened.state_reason
    assert opened.gate is not None and opened.gate.verdict is GateVerdict.PASS
    # The campaign id (random) decides which vehicles fall in which wave, so the control's size
    # varies from run to run (14 of the 42 later-wave vehicles shared the canary's strata in one CI run): the
    # judge compared at least the samples it needs, not a fixed number.
    assert opened.gate.canary_vehicles >= MIN_SAMPLES and opened.gate.control_vehicles >= MIN_SAMPLES


def test_a_soak_baseline_survives_the_ledger_table_across_item_chunks(stack):
    store = SoakBaselineStore(stack.clients.dynamodb, stack.resources.ledger_table)
    canary = {f"C{n:016d}": HealthReading(3600.5, n, 1, 2, 1800.0, 0.125) for n in range(1500)}
    control = {f"K{n:016d}": HealthReading(7200.0, 0, 0, n, 0.0, 0.0) for n in range(700)}
    store.put("camp-1", 0, SoakBaseline(canary, control))
    assert store.get("camp-1", 0) == SoakBaseline(canary, control)
    assert store.get("camp-1", 1) is None
