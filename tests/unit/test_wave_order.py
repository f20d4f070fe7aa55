"""A campaign's rollout order is sha256 of ``<campaign>:<vin>``, as it has been: the waves' rosters are
that order cut at the wave sizes (creation sorts a million vehicles by it)."""

from __future__ import annotations

import hashlib

from campaign_world import spec as campaign_spec
from campaign_world import vin, world_with_campaign

from fleetota_core.domain.campaign import WaveSpec


def test_the_waves_are_the_vehicles_in_sha256_order_of_campaign_and_vin() -> None:
    world, campaign = world_with_campaign(
        500, campaign_spec(waves=(WaveSpec(percent=5), WaveSpec(percent=40), WaveSpec(percent=100)))
    )
    order = sorted(
        (vin(n) for n in range(500)),
        key=lambda v: hashlib.sha256(f"{campaign.campaign_id}:{v}".encode()).hexdigest(),
    )
    sizes = campaign.wave_sizes
    assert sizes == (25, 200, 275)
    first = 0
    for wave, size in enumerate(sizes):
        assert world.schedule.rosters[(campaign.campaign_id, wave)] == order[first : first + size]
        first += size
    waves = {d.vin: d.wave for d in world.deployments.items.values()}
    assert [waves[v] for v in order] == [w for w, size in enumerate(sizes) for _ in range(size)]
