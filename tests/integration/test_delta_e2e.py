"""End to end on the local stack: a release with deltas rolls out through the real pipeline and ticks.

The simulated vehicles run the simulator's firmware images (``simulator.firmware_images``); their
versions are published as releases first, so the deltas are made from the very images the vehicles
run. One campaign installs from deltas; in the other, a delta object is corrupted in the bucket after
publishing, and the vehicles on its source fall back to the full image and still succeed.
"""

from __future__ import annotations

from collections import Counter

import pytest
from test_campaign_e2e import ANY_TIME, OtaWorld, world

from fleetota_core.domain.campaign import CampaignSpec, CampaignState, WaveSpec
from fleetota_core.domain.delta import delivery_tally
from fleetota_core.domain.deployment import DeploymentState, RetryPolicy
from fleetota_core.services.campaigns.create import create_campaign, list_deployments
from fleetota_core.services.campaigns.releases import publish_release
from fleetota_core.services.delta.publish import publish_with_deltas
from simulator.firmware_images import catalogue_image
from simulator.ota_client import OtaFaults

pytestmark = pytest.mark.slow
NEW = "3.5.0"


def publish_with_installed_base(stack, w: OtaWorld, sources: int):
    """Publish the images of the fleet's ``sources`` most common versions, then NEW with deltas."""
    models = sorted({v.model for v in w.sim.vehicles})
    common = Counter(v.firmware_version for v in w.sim.vehicles).most_common(sources)
    for version, _ in common:
        publish_release(catalogue_image(version), version, models, [], None, "base", "alice", stack.ports)
    release, plan = publish_with_deltas(
        catalogue_image(NEW), NEW, models, [], None, "e2e", "alice", stack.ports, deltas_from=sources
    )
    assert not plan.skipped, plan.skipped
    assert [d.source_version for d in release.deltas] == [v for v, _ in common]
    return release


def roll_out(stack, w: OtaWorld):
    spec = CampaignSpec(
        name="delta rollout",
        release_version=NEW,
        waves=(WaveSpec(percent=100),),
        retry=RetryPolicy(max_attempts=2, backoff_base_s=30),
        eligibility=ANY_TIME,
        max_in_flight=100,
    )
    campaign = create_campaign(spec, "alice", stack.ports, "e2e", now=w.now)
    done = w.run(campaign.campaign_id, minutes=40)
    assert done.state is CampaignState.COMPLETED, done.summary()
    states = Counter(d.state for d in list_deployments(campaign.campaign_id, stack.ports))
    assert states == {DeploymentState.SUCCEEDED: campaign.total}
    assert all(v.firmware_version == NEW for v in w.sim.vehicles)
    return done


def test_a_delta_campaign_installs_from_deltas_and_downloads_a_fraction_of_the_full_images(stack):
    w = world(stack, 24, OtaFaults(), seed=21)
    versions = Counter(v.firmware_version for v in w.sim.vehicles)
    release = publish_with_installed_base(stack, w, sources=2)
    on_sources = sum(versions[d.source_version] for d in release.deltas)

    done = roll_out(stack, w)

    tally = delivery_tally(done.counters.delivery)
    assert (tally.from_delta, tally.from_full, tally.fallbacks) == (on_sources, 24 - on_sources, {})
    full = release.manifest.size_bytes
    delta_bytes = sum(versions[d.source_version] * d.manifest.size_bytes for d in release.deltas)
    assert tally.downloaded_bytes == delta_bytes + (24 - on_sources) * full
    assert tally.full_image_bytes == 24 * full
    assert tally.saved_bytes > on_sources * full * 0.8, "each delta is a small part of the image"


def test_a_corrupted_delta_falls_back_to_the_full_image_and_every_vehicle_still_succeeds(stack):
    w = world(stack, 24, OtaFaults(), seed=22)
    versions = Counter(v.firmware_version for v in w.sim.vehicles)
    release = publish_with_installed_base(stack, w, sources=2)
    broken, intact = release.deltas
    # Someone with write access to the bucket flips one byte of a signed delta after publishing.
    s3, bucket = stack.clients.s3, stack.resources.firmware_bucket
    body = bytearray(s3.get_object(Bucket=bucket, Key=broken.manifest.artifact_key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=broken.manifest.artifact_key, Body=bytes(body))

    done = roll_out(stack, w)

    tally = delivery_tally(done.counters.delivery)
    assert tally.fallbacks == {"DELTA_CHECKSUM_MISMATCH": versions[broken.source_version]}
    assert tally.from_delta == versions[intact.source_version]
    assert tally.from_full == 24 - versions[intact.source_version]
    assert w.listener.client.stats["fallback_DELTA_CHECKSUM_MISMATCH"] == versions[broken.source_version]
