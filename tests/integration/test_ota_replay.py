"""Uptane-style attacks on the local stack: a replayed rollback document, a rewritten release manifest.

An attacker here can write to the firmware bucket (job documents, release manifests), but holds
neither KMS key. Vehicles are the simulator's, listening for notices; the pipeline and ticks are real.
"""

from __future__ import annotations

import pytest

from fleetota_core.adapters.firmware_store import job_key, release_key
from fleetota_core.cli import main
from fleetota_core.domain.campaign import AbortCriteria, CampaignSpec, CampaignState, TargetFilter, WaveSpec
from fleetota_core.domain.deployment import DeploymentState, deployment_id
from fleetota_core.domain.firmware import FirmwareRelease
from fleetota_core.services.campaigns.actions import rollback_campaign
from fleetota_core.services.campaigns.create import create_campaign, get_campaign, list_deployments
from fleetota_core.services.campaigns.tick import run_tick
from simulator.ota_client import OtaFaults
from tests.integration.test_campaign_e2e import ANY_TIME, NEW, fleet_models, publish, world
from tests.integration.test_campaign_services import MODEL, seed_vehicles

pytestmark = pytest.mark.slow
LENIENT = dict(
    eligibility=ANY_TIME,
    waves=(WaveSpec(percent=100, error_threshold_pct=100),),
    abort=AbortCriteria(failure_pct=100, min_executed=1000),
)


def test_a_vehicles_old_rollback_document_copied_over_a_new_campaigns_job_is_refused_as_replayed(stack):
    s3, bucket = stack.clients.s3, stack.resources.firmware_bucket
    w = world(stack, 20, OtaFaults(), seed=14)
    models = fleet_models(w)
    cars = [v for v in w.sim.vehicles if v.firmware_version == "3.4.1"]
    assert cars
    for version in ("3.4.1", NEW, "3.6.0"):
        publish(stack, version, models)
    target = TargetFilter(vins=tuple(sorted(v.vin for v in cars)))

    def rollout(spec: CampaignSpec) -> str:
        campaign = create_campaign(spec, "alice", stack.ports, now=w.now)
        assert w.run(campaign.campaign_id, minutes=15).state is CampaignState.COMPLETED
        w.step(tick=False)  # the vehicles table learns the new versions
        return campaign.campaign_id

    # Given vehicles that went 3.4.1 -> 3.5.0, rolled back to 3.4.1, then upgraded to 3.5.0 again
    first = rollout(CampaignSpec(name="upgrade", release_version=NEW, target=target, **LENIENT))
    rollback = rollback_campaign(first, "alice", "regression", stack.ports, now=w.now)
    assert w.run(rollback.campaign_id, minutes=15).counters.succeeded == len(cars)
    w.step(tick=False)
    stolen = {
        v.vin: s3.get_object(Bucket=bucket, Key=job_key(v.vin, deployment_id(rollback.campaign_id, v.vin)))[
            "Body"
        ].read()
        for v in cars
    }
    rollout(CampaignSpec(name="again", release_version=NEW, target=target, **LENIENT))
    assert all(v.firmware_version == NEW for v in cars)
    # When a new campaign to 3.6.0 signs its job documents, and the attacker copies each vehicle's
    # earlier rollback document (signed, allow_downgrade, not expired) over its new one
    attack = create_campaign(
        CampaignSpec(name="3.6.0", release_version="3.6.0", target=target, **LENIENT),
        "alice",
        stack.ports,
        now=w.now,
    )
    run_tick(stack.ports, w.now)
    for vin, body in stolen.items():
        s3.put_object(Bucket=bucket, Key=job_key(vin, deployment_id(attack.campaign_id, vin)), Body=body)
    for _ in range(8):  # time enough to download and install, had they accepted it
        w.step(tick=False)
    # Then every vehicle refuses it as a replay, reported against the new campaign, and stays on 3.5.0
    rows = list_deployments(attack.campaign_id, stack.ports)
    assert {r.state for r in rows} == {DeploymentState.REJECTED}
    assert {r.error_code for r in rows} == {"REPLAYED"}
    assert all("already used" in (r.detail or "") for r in rows)
    assert all(v.firmware_version == NEW for v in cars)
    assert get_campaign(attack.campaign_id, stack.ports).counters.succeeded == 0


def test_campaign_create_refuses_a_manifest_rewritten_in_the_bucket_with_one_error_line(
    stack, tmp_path, capsys
):
    seed_vehicles(stack, 2)
    image = tmp_path / "app.bin"
    image.write_bytes(b"\x7fELF" * 25)
    assert main(["firmware", "publish", str(image), "--version", "2.0.0", "--models", MODEL]) == 0
    s3, bucket = stack.clients.s3, stack.resources.firmware_bucket
    release = FirmwareRelease.model_validate_json(
        s3.get_object(Bucket=bucket, Key=release_key("2.0.0"))["Body"].read()
    )
    # An attacker points the signed release at a 64 MiB artifact of their own, keeping the signature.
    forged = release.model_copy(
        update={
            "manifest": release.manifest.model_copy(update={"size_bytes": 64 * 2**20, "sha256": "e" * 64})
        }
    )
    s3.put_object(Bucket=bucket, Key=release_key("2.0.0"), Body=forged.model_dump_json().encode())
    capsys.readouterr()
    code = main(["campaign", "create", "--name", "c", "--release", "2.0.0"])
    _, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(
        "error: release 2.0.0: its manifest (version, sha256, size, models) does not verify"
    )
    assert stack.clients.dynamodb.scan(TableName=stack.resources.campaigns_table)["Count"] == 0
    assert s3.list_objects_v2(Bucket=bucket, Prefix="jobs/")["KeyCount"] == 0


def test_campaign_create_refuses_an_artifact_swapped_in_the_bucket_for_one_of_another_size(
    stack, tmp_path, capsys
):
    seed_vehicles(stack, 2)
    image = tmp_path / "app.bin"
    image.write_bytes(b"\x7fELF" * 25)
    assert main(["firmware", "publish", str(image), "--version", "2.0.0", "--models", MODEL]) == 0
    s3, bucket = stack.clients.s3, stack.resources.firmware_bucket
    key = FirmwareRelease.model_validate_json(
        s3.get_object(Bucket=bucket, Key=release_key("2.0.0"))["Body"].read()
    ).manifest.artifact_key
    s3.put_object(Bucket=bucket, Key=key, Body=b"\x00" * 4096)  # the manifest and its signature untouched
    capsys.readouterr()
    code = main(["campaign", "create", "--name", "c", "--release", "2.0.0"])
    _, err = capsys.readouterr()
    assert code == 1
    assert err == (
        f"error: release 2.0.0: the artifact {key} is 4096 bytes, the signed manifest says 100; "
        "it was replaced after publishing. Restore or republish the release.\n"
    )
    assert stack.clients.dynamodb.scan(TableName=stack.resources.campaigns_table)["Count"] == 0
