"""Nothing is signed that points at a release whose manifest does not verify with the image key."""

from __future__ import annotations

import pytest
from campaign_fakes import FakeWorld
from campaign_world import MODEL, spec, tick, vehicle, world_with_campaign

from fleetota_core.domain.campaign import CampaignState
from fleetota_core.domain.firmware import FirmwareRelease, load_public_key, verify_release, verify_signature
from fleetota_core.errors import IntegrityError
from fleetota_core.services.campaigns.create import create_campaign
from fleetota_core.services.campaigns.preview import preview_campaign
from fleetota_core.services.campaigns.releases import publish_release


def published(world: FakeWorld, vehicles: int = 3) -> FirmwareRelease:
    now = world.clock.now()
    for n in range(vehicles):
        world.vehicles.put(vehicle(n, now))
    return publish_release(b"firmware" * 64, "2.0.0", [MODEL], [], None, "", "alice", world.ports)


def rewritten(release: FirmwareRelease, **changes: object) -> FirmwareRelease:
    """The release as an attacker with bucket access leaves it: manifest edited, signature kept."""
    return release.model_copy(update={"manifest": release.manifest.model_copy(update=changes)})


def test_releases_are_signed_with_the_image_key_and_job_documents_with_the_director_key():
    world, _campaign = world_with_campaign(2, spec())
    tick(world)
    image = load_public_key(world.image_signer.public_key_der())
    director = load_public_key(world.director_signer.public_key_der())
    job = next(iter(world.releases.jobs.values()))
    assert verify_release(image, job.document.release) and not verify_release(director, job.document.release)
    assert verify_signature(director, job.document.signed_bytes(), job.signature)
    assert not verify_signature(image, job.document.signed_bytes(), job.signature)
    # The notice names the target version the document must carry.
    assert {n["target_version"] for _, n in world.notifier.notices} == {"2.0.0"}


@pytest.mark.parametrize(
    "changes", [{"sha256": "0" * 64}, {"size_bytes": 64 * 2**20}, {"models": (MODEL, "Model Y")}]
)
def test_campaign_create_refuses_a_release_rewritten_in_the_bucket_and_writes_nothing(changes):
    world = FakeWorld()
    release = published(world)
    world.releases.releases["2.0.0"] = rewritten(release, **changes)
    with pytest.raises(IntegrityError, match=r"release 2\.0\.0: .* does not verify with the image key"):
        create_campaign(spec(), "alice", world.ports)
    with pytest.raises(IntegrityError, match="does not verify with the image key"):
        preview_campaign(spec(), world.ports, world.clock.now())
    assert world.campaigns.rows == {} and world.deployments.for_vin(vehicle(0, world.clock.now()).vin) == []
    assert world.releases.jobs == {}


def test_campaign_create_refuses_a_release_signed_by_the_director_key():
    world = FakeWorld()
    release = published(world)
    signature, _ = world.director_signer.sign(release.manifest.signed_bytes())
    world.releases.releases["2.0.0"] = release.model_copy(update={"signature": signature})
    with pytest.raises(IntegrityError, match="signed by the director key, not the image key"):
        create_campaign(spec(), "alice", world.ports)


def test_the_tick_pauses_a_campaign_whose_release_was_rewritten_and_signs_nothing():
    # Given a campaign created from a good release
    world, campaign = world_with_campaign(3, spec())
    # When its stored release is rewritten before the first tick (a bigger artifact, same signature)
    row = world.campaigns.rows[campaign.campaign_id]
    row.campaign = row.campaign.model_copy(update={"release": rewritten(campaign.release, size_bytes=10**9)})
    result = tick(world)
    # Then nothing is signed or sent, and the campaign is paused with the reason and an alert
    assert world.releases.jobs == {} and world.notifier.notices == [] and result.notified == 0
    paused = world.ports.campaign(campaign.campaign_id)
    assert paused.state is CampaignState.PAUSED
    assert "does not verify with the image key" in (paused.state_reason or "")
    assert [m["event"] for _, m in world.notifier.alerts] == ["RELEASE_UNTRUSTED"]
    assert "RELEASE_UNTRUSTED" in world.audit.actions(campaign.campaign_id)
    # And a later tick, or an operator's resume, does not sign either; the alert is not repeated
    tick(world, 60)
    row.campaign = row.campaign.model_copy(update={"state": CampaignState.RUNNING})
    tick(world, 60)
    assert world.releases.jobs == {} and world.notifier.notices == []
    assert world.ports.campaign(campaign.campaign_id).state is CampaignState.PAUSED
    assert len(world.notifier.alerts) == 2  # the resume was undone, with a second alert


def test_campaign_create_refuses_a_release_whose_artifact_was_swapped_for_another_size():
    world = FakeWorld()
    release = published(world)
    world.releases.artifacts[release.manifest.artifact_key] = bytes(64 * 2**20)
    with pytest.raises(IntegrityError, match=r"is 67108864 bytes, the signed manifest says 512"):
        create_campaign(spec(), "alice", world.ports)
    assert world.campaigns.rows == {}


def test_campaign_create_refuses_an_artifact_recorded_with_another_sha256_or_missing():
    world = FakeWorld()
    release = published(world)
    key = release.manifest.artifact_key
    world.releases.recorded_sha256[key] = "f" * 64
    with pytest.raises(IntegrityError, match="recorded with sha256 ffffffffffffffff"):
        create_campaign(spec(), "alice", world.ports)
    del world.releases.artifacts[key]
    with pytest.raises(IntegrityError, match="is missing from the firmware bucket"):
        preview_campaign(spec(), world.ports, world.clock.now())
