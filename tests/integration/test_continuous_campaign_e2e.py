"""Continuous campaigns end to end on the local stack: a vehicle provisioned mid-campaign joins and updates.

The simulated fleet has one vehicle more than the registry: its telemetry is quarantined (unknown
identity) until the fleet owner provisions it, mid-campaign. Its first accepted reading is written
to the vehicles table and to the fleet snapshot's deltas, the change feed the tick reads.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from fleetota_core import composition
from fleetota_core.domain.campaign import CampaignSpec, CampaignState, WaveSpec
from fleetota_core.domain.deployment import DeploymentState, RetryPolicy
from fleetota_core.services.campaigns.actions import finish_campaign
from fleetota_core.services.campaigns.create import campaign_history, create_campaign, get_campaign
from fleetota_core.services.ingest import batch as ingest_batch
from simulator.ota_client import OtaFaults
from simulator.vehicle_keys import register_fleet
from tests.integration import test_campaign_e2e as e2e
from tests.integration.test_campaign_e2e import ANY_TIME, NEW, fleet_models, publish, world

pytestmark = pytest.mark.slow
S = DeploymentState


def test_a_vehicle_provisioned_mid_campaign_joins_a_continuous_campaign_and_updates(stack, monkeypatch):
    # The feed waits 30 s for late deltas; a few simulated minutes take less wall time than that.
    monkeypatch.setattr(composition, "DELTA_SETTLE", timedelta(seconds=1))
    fleet_size = 6

    held_back: list = []

    def register_all_but_one(clients, resources, fleet):
        # One vehicle of a model the others have: the release (for the models reported) covers it.
        newcomer = next(v for v in reversed(fleet) if any(o.model == v.model for o in fleet if o is not v))
        held_back.append(newcomer)
        return register_fleet(clients, resources, [v for v in fleet if v is not newcomer])

    monkeypatch.setattr(e2e, "register_fleet", register_all_but_one)
    w = world(stack, fleet_size + 1, OtaFaults(), seed=31)
    newcomer = held_back[0]
    publish(stack, NEW, fleet_models(w))
    spec = CampaignSpec(
        name="continuous",
        release_version=NEW,
        waves=(WaveSpec(percent=100),),
        retry=RetryPolicy(max_attempts=3, backoff_base_s=30),
        eligibility=ANY_TIME,
        continuous=True,
    )
    created = create_campaign(spec, "alice", stack.ports, "e2e", now=w.now)
    cid = created.campaign_id
    assert newcomer.vin not in {d.vin for d in stack.ports.deployments.for_campaign(cid)}
    assert created.total == fleet_size  # the unprovisioned vehicle is nobody's target yet

    for _ in range(30):
        w.step()
        if get_campaign(cid, stack.ports).counters.succeeded == fleet_size:
            break
    drained = get_campaign(cid, stack.ports)
    assert drained.counters.succeeded == fleet_size
    assert drained.state is CampaignState.RUNNING  # continuous: drained, still taking vehicles

    # Mid-campaign the fleet owner provisions it; a cold processor accepts its next reading.
    register_fleet(stack.clients, stack.resources, [newcomer])
    monkeypatch.setattr(ingest_batch, "_pipelines", {})
    joined = None
    for _ in range(30):
        w.step()
        joined = stack.ports.deployments.get(cid, newcomer.vin)
        if joined is not None and joined.state is S.SUCCEEDED:
            break

    assert joined is not None and joined.joined_at is not None
    assert joined.state is S.SUCCEEDED, joined
    assert newcomer.firmware_version == NEW
    notices = w.listener.client.notified  # (vin, attempt) -> notices received
    assert {k: n for k, n in notices.items() if k[0] == newcomer.vin} == {(newcomer.vin, 1): 1}
    after = get_campaign(cid, stack.ports)
    assert after.state is CampaignState.RUNNING
    assert after.summary()["joined_later"] == 1 and after.total == fleet_size + 1
    assert after.counters.succeeded == fleet_size + 1
    enrol = [e for e in campaign_history(cid, stack.ports) if e["action"] == "ENROL"]
    assert [e["detail"]["vins"] for e in enrol] == [[newcomer.vin]]
    # Every reading puts the vehicles in the feed again; nobody joins twice.
    for _ in range(3):
        w.step()
    assert len(stack.ports.deployments.for_campaign(cid)) == fleet_size + 1

    finish_campaign(cid, "alice", "superseded", stack.ports)
    w.step()
    assert get_campaign(cid, stack.ports).state is CampaignState.COMPLETED
