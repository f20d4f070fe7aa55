"""A 10-vehicle campaign on the local stack while forged, unsigned and mis-identified reports arrive.

Whoever can write to ``raw/`` is not trusted: only reports signed by the vehicle's registered key
move its deployment, and every other one is quarantined and counted, with the books still balanced.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from fleetota_core.domain.campaign import CampaignSpec, CampaignState, TargetFilter, WaveSpec
from fleetota_core.domain.deployment import DeploymentState
from fleetota_core.services.campaigns.create import create_campaign, list_deployments
from fleetota_core.services.campaigns.preview import preview_campaign
from fleetota_core.services.ingest.stats import telemetry_stats
from simulator.record import encode
from tests.integration.test_campaign_e2e import ANY_TIME, NEW, OtaFaults, publish, world

FORGED_CHAIN = ["DOWNLOADING", "VERIFYING", "INSTALLING", "SUCCEEDED"]


def forged_lines(w, vin: str, campaign_id: str, key: ec.EllipticCurvePrivateKey | None) -> list[bytes]:
    """A DOWNLOADING -> SUCCEEDED chain for ``vin``: unsigned (key None) or signed with ``key``."""
    from fleetota_core.domain.telemetry import OtaReport, OtaStatus

    vehicle = w.sim.by_vin[vin]
    own_key, vehicle.signing_key = vehicle.signing_key, key
    lines = []
    try:
        for i, status in enumerate(FORGED_CHAIN):
            vehicle.seq += 1
            report = OtaReport(
                campaign_id=campaign_id,
                deployment_id=f"{campaign_id}.{vin}",
                status=OtaStatus(status),
                attempt=1,
                progress_pct=100.0,
                target_version=NEW,
            )
            lines.append(encode(vehicle, w.sim.t - 50 + i, report).encode())
    finally:
        vehicle.signing_key = own_key
    return lines


def put_raw(stack, name: str, lines: list[bytes]) -> None:
    now = datetime.now(UTC)
    stack.clients.s3.put_object(
        Bucket=stack.resources.telemetry_bucket,
        Key=f"raw/dt={now:%Y-%m-%d}/hour={now:%H}/{name}.ndjson.gz",
        Body=gzip.compress(b"\n".join(lines) + b"\n"),
    )


@pytest.mark.slow
def test_a_campaign_counts_only_signed_reports_while_forged_ones_are_rejected_and_counted(stack):
    # Given 10 provisioned simulated vehicles, each with its own key, and a campaign for them all
    w = world(stack, 10, OtaFaults(), seed=21)
    publish(stack, NEW, sorted({v.model for v in w.sim.vehicles}))
    campaign = create_campaign(
        CampaignSpec(
            name="signed only",
            release_version=NEW,
            eligibility=ANY_TIME,
            waves=(WaveSpec(percent=100, error_threshold_pct=100),),
            max_in_flight=100,
        ),
        "alice",
        stack.ports,
        now=w.now,
    )
    assert campaign.total == len(w.sim.vehicles) == 10
    w.step()  # notified
    targets = [d.vin for d in list_deployments(campaign.campaign_id, stack.ports)]
    victim, other = targets[0], targets[1]
    before = Counter(d.state for d in list_deployments(campaign.campaign_id, stack.ports))

    # When an attacker with write access to raw/ uploads forged reports alongside the fleet's own:
    # an unsigned success chain, one signed by another vehicle's key, one with a stranger's key, an
    # unprovisioned VIN, and a record claiming another model.
    stranger = ec.generate_private_key(ec.SECP256R1())
    unsigned = forged_lines(w, victim, campaign.campaign_id, None)
    stolen = forged_lines(w, victim, campaign.campaign_id, w.sim.by_vin[other].signing_key)
    random_key = forged_lines(w, other, campaign.campaign_id, stranger)
    liar = w.sim.by_vin[targets[2]]
    liar.seq += 1
    liar_line = json.loads(encode(liar, w.sim.t - 1))
    liar_line["model"], liar_line["hw_rev"] = "Tesla Model 3", "HW4"
    ghost = json.loads(unsigned[0])
    ghost["vin"] = "1HGCM82633A004352"  # valid VIN, never provisioned
    put_raw(stack, "forged", [*unsigned, *stolen, *random_key])
    put_raw(stack, "identity", [json.dumps(liar_line).encode(), json.dumps(ghost).encode()])
    stack.runtime.drain(timeout=60)

    # Then no forged report moved anything, and each one is counted as rejected
    after = Counter(d.state for d in list_deployments(campaign.campaign_id, stack.ports))
    assert after == before
    assert DeploymentState.SUCCEEDED not in after
    stats = telemetry_stats(stack.clients, stack.resources)
    forged = len(unsigned) + len(stolen) + len(random_key)
    assert stats["ota"]["report_rejected"] == forged == 12
    assert stats["ota"]["report_rejected__unsigned"] == 4
    assert stats["ota"]["report_rejected__bad_signature"] == 8
    assert stats["quarantined_by_reason"]["ota_report_rejected"] == forged
    assert stats["quarantined_by_reason"]["unknown_vehicle"] == 1
    assert stats["received"] == stats["stored"] + stats["quarantined"]

    # And the campaign runs to its end on the signed reports alone, its counters equal to them
    done = w.run(campaign.campaign_id, minutes=20)
    assert done.state is CampaignState.COMPLETED, done.summary()
    rows = list_deployments(campaign.campaign_id, stack.ports)
    assert Counter(r.state for r in rows) == {DeploymentState.SUCCEEDED: 10}
    assert done.counters.succeeded == 10 == w.listener.client.stats["SUCCEEDED"]
    assert all(v.firmware_version == NEW for v in w.sim.vehicles)
    stats = telemetry_stats(stack.clients, stack.resources)
    assert stats["ota"]["report_rejected"] == 12  # the fleet's own reports were all accepted
    assert stats["received"] == stats["stored"] + stats["quarantined"]
    assert stats["identity_mismatch"] == 1


def test_a_model_claimed_in_telemetry_does_not_change_targeting(stack):
    # Given a provisioned Polestar whose telemetry claims it is a Tesla Model 3
    w = world(stack, 6, OtaFaults(), seed=22)
    polestar = w.sim.vehicles[0]
    claimed = "Tesla Model 3" if polestar.model != "Tesla Model 3" else "Polestar 2"
    polestar.seq += 1
    line = json.loads(encode(polestar, w.sim.t + 600))  # past its heartbeat: a material reading
    line["model"] = claimed
    put_raw(stack, "claims", [json.dumps(line).encode()])
    stack.runtime.drain(timeout=30)
    publish(stack, NEW, sorted({claimed, *(v.model for v in w.sim.vehicles)}))

    # When an operator previews a campaign for the claimed model
    preview = preview_campaign(
        CampaignSpec(name="t", release_version=NEW, target=TargetFilter(models=(claimed,))),
        stack.ports,
        now=w.now + timedelta(seconds=1),
    )

    # Then the vehicle is not targeted: its stored model is the registry's, and targeting reads it
    expected = sum(1 for v in w.sim.vehicles if v.model == claimed)
    assert preview.matched == expected
    stored = stack.clients.dynamodb.get_item(
        TableName=stack.resources.vehicles_table, Key={"vin": {"S": polestar.vin}}
    )["Item"]
    assert stored["model"]["S"] == polestar.model
