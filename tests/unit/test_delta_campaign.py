"""Deltas through the campaign use cases on fakes: publish, preview, the tick's job documents, counters."""

from __future__ import annotations

import hashlib

import pytest
from campaign_fakes import FakeWorld
from campaign_world import MODEL, deployments, spec, tick, vehicle

from fleetota_core.domain.delta import delivery_tally
from fleetota_core.domain.deployment import DeploymentState
from fleetota_core.domain.telemetry import OtaDelivery, OtaReport, OtaStatus
from fleetota_core.errors import IntegrityError
from fleetota_core.services.campaigns.create import create_campaign
from fleetota_core.services.campaigns.preview import preview_campaign
from fleetota_core.services.campaigns.releases import publish_release
from fleetota_core.services.campaigns.reports import apply_ota_reports
from fleetota_core.services.delta.publish import publish_with_deltas
from simulator.firmware_images import catalogue_image

S = DeploymentState
VERSIONS = ["3.4.1"] * 4 + ["3.4.0"] * 2 + ["3.3.2"]  # the fleet, one vehicle each


def fleet_world() -> FakeWorld:
    world = FakeWorld()
    now = world.clock.now()
    for n, version in enumerate(VERSIONS):
        world.vehicles.put(vehicle(n, now, firmware_version=version))
    return world


def publish_base(world: FakeWorld, *versions: str) -> None:
    for version in versions:
        publish_release(catalogue_image(version), version, [MODEL], [], None, "", "alice", world.ports)


def test_publish_makes_signed_deltas_from_the_most_common_published_versions_and_says_what_it_skipped():
    world = fleet_world()
    publish_base(world, "3.4.1", "3.4.0")  # 3.3.2 was never published

    release, plan = publish_with_deltas(
        catalogue_image("3.5.0"), "3.5.0", [MODEL], [], None, "", "alice", world.ports, deltas_from=3
    )

    assert [d.source_version for d in release.deltas] == ["3.4.1", "3.4.0"]
    assert plan.fleet_counts == {"3.4.1": 4, "3.4.0": 2, "3.3.2": 1}
    assert "not published" in plan.skipped["3.3.2"]
    for delta in release.deltas:
        stored = world.releases.artifacts[delta.manifest.artifact_key]
        assert hashlib.sha256(stored).hexdigest() == delta.manifest.sha256
        assert delta.manifest.fits(release.manifest)
    assert world.releases.get_release("3.5.0") == release


def test_a_source_whose_stored_image_was_replaced_is_refused_before_any_delta_is_made():
    world = fleet_world()
    publish_base(world, "3.4.1")
    base = world.releases.get_release("3.4.1")
    assert base is not None
    world.releases.artifacts[base.manifest.artifact_key] = b"swapped" * 100

    with pytest.raises(IntegrityError, match="does not match its signed sha256"):
        publish_with_deltas(
            catalogue_image("3.5.0"),
            "3.5.0",
            [MODEL],
            [],
            None,
            "",
            "alice",
            world.ports,
            delta_from=["3.4.1"],
        )
    assert not world.releases.release_exists("3.5.0")


def delta_campaign(world: FakeWorld):
    publish_base(world, "3.4.1", "3.4.0")
    release, _ = publish_with_deltas(
        catalogue_image("3.5.0"), "3.5.0", [MODEL], [], None, "", "alice", world.ports, deltas_from=2
    )
    return release, spec(release_version="3.5.0", max_in_flight=100)


def test_the_preview_shows_the_bytes_the_deltas_save():
    world = fleet_world()
    release, campaign_spec = delta_campaign(world)

    preview = preview_campaign(campaign_spec, world.ports)

    full = release.manifest.size_bytes
    by_source = {d.source_version: d.manifest.size_bytes for d in release.deltas}
    assert preview.delta_vehicles == 6
    assert preview.full_image_bytes == 7 * full
    assert preview.download_bytes == 4 * by_source["3.4.1"] + 2 * by_source["3.4.0"] + full
    assert preview.bytes_saved == preview.full_image_bytes - preview.download_bytes > 4 * full


def test_the_tick_offers_each_vehicle_the_delta_from_its_version_and_always_the_full_image():
    world = fleet_world()
    _, campaign_spec = delta_campaign(world)
    campaign = create_campaign(campaign_spec, "alice", world.ports)

    tick(world)

    jobs = {signed.document.vin: signed.document for signed in world.releases.jobs.values()}
    assert len(jobs) == len(VERSIONS)
    for d in deployments(world, campaign):
        doc = jobs[d.vin]
        assert doc.download_url and doc.release.deltas == ()
        if d.from_version == "3.3.2":
            assert doc.delta is None
        else:
            assert doc.delta is not None and doc.delta.delta.source_version == d.from_version
            assert doc.delta.download_url


def test_a_delta_whose_signature_no_longer_verifies_is_never_offered():
    world = fleet_world()
    release, campaign_spec = delta_campaign(world)
    forged = release.deltas[0].model_copy(
        update={"manifest": release.deltas[0].manifest.model_copy(update={"size_bytes": 1})}
    )
    world.releases.put_release(release.model_copy(update={"deltas": (forged, *release.deltas[1:])}))
    campaign = create_campaign(campaign_spec, "alice", world.ports)

    tick(world)

    offered = {
        s.document.delta.delta.source_version for s in world.releases.jobs.values() if s.document.delta
    }
    assert offered == {"3.4.0"}
    assert len(deployments(world, campaign, S.NOTIFIED)) == len(VERSIONS)


def test_finished_attempts_count_their_delivery_once_and_progress_reports_count_nothing():
    world = fleet_world()
    release, campaign_spec = delta_campaign(world)
    campaign = create_campaign(campaign_spec, "alice", world.ports)
    tick(world)
    full = release.manifest.size_bytes
    notified = deployments(world, campaign, S.NOTIFIED)

    def send(d, status, delivery):
        ota = OtaReport(campaign_id=d.campaign_id, deployment_id=d.deployment_id, status=status, attempt=1,
                        target_version="3.5.0", delivery=delivery)  # fmt: skip
        apply_ota_reports([(d.vin, ota)], world.ports)

    delta = OtaDelivery(artifact="delta", downloaded_bytes=1000)
    fallback = OtaDelivery(artifact="full", downloaded_bytes=full + 1000, fallback="DELTA_CHECKSUM_MISMATCH")
    send(notified[0], OtaStatus.VERIFYING, delta)
    send(notified[0], OtaStatus.SUCCEEDED, delta)
    send(notified[0], OtaStatus.SUCCEEDED, delta)  # a repeat: no transition, not counted again
    send(notified[1], OtaStatus.SUCCEEDED, fallback)

    counters = world.campaigns.get(campaign.campaign_id).counters
    tally = delivery_tally(counters.delivery)
    assert (tally.from_delta, tally.from_full) == (1, 1)
    assert tally.fallbacks == {"DELTA_CHECKSUM_MISMATCH": 1}
    assert tally.downloaded_bytes == 1000 + full + 1000
    assert tally.saved_bytes == 2 * full - tally.downloaded_bytes
    tick(world)
    data, _ = world.metrics.published[-1]
    dims = {"CampaignId": campaign.campaign_id}
    assert ("DeltaInstalls", 1, "Count", dims) in data
    assert ("DeltaFallbacks", 1, "Count", dims) in data
    assert ("BytesSaved", tally.saved_bytes, "Bytes", dims) in data
