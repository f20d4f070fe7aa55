"""The demo's read models and spec: the demo campaign, the demo release, honest counts, map colouring."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from fleetota_core.domain.campaign import wave_sizes
from fleetota_core.domain.delivery import InstallPolicy
from fleetota_core.domain.firmware import FirmwareManifest, FirmwareRelease
from fleetota_core.domain.geography import METROS
from fleetota_core.local.demo import (
    DEMO_IMAGE_BYTES,
    DEMO_RELEASE_VERSION,
    demo_firmware_image,
    demo_fleet_options,
    demo_release_target,
    demo_start,
    ensure_demo_release,
)
from fleetota_core.local.sample_fleet import sample_fleet
from fleetota_core.local.simulator_process import read_fleet_file
from fleetota_core.views.demo import demo_campaign_spec, demo_release, time_compression
from fleetota_core.views.fleet import NEVER_REPORTED, fleet_kpis, normalize_fleet, with_provisioned
from fleetota_core.views.fleet_map import NOT_TARGETED, offline_map, scope_names, with_deployments
from tests.unit.campaign_fakes import FakeWorld


def release(version: str = "3.5.0", models: tuple[str, ...] = ("Tesla Model 3", "Ford Mustang Mach-E")):
    manifest = FirmwareManifest(
        version=version, sha256="a" * 64, size_bytes=10, models=models, artifact_key="k",
        created_at=datetime(2026, 11, 26, 9, tzinfo=UTC), created_by="system:demo",
    )  # fmt: skip
    return FirmwareRelease(manifest=manifest, signature="c2ln", key_id="key")


def provisioned(n: int, models: tuple[str, ...] = ("Tesla Model 3",)) -> list[dict]:
    return [
        {"vin": f"VIN{i:014d}", "make": "Tesla", "model": models[i % len(models)], "model_year": 2024,
         "hw_rev": "HW4" if i % 2 else "HW3", "firmware_version": "3.4.1", "metro": "Berlin",
         "region": "eu-central"}
        for i in range(n)
    ]  # fmt: skip


# ------------------------------------------------------------------ the demo campaign spec


def test_the_demo_campaign_rolls_the_release_out_in_three_waves_with_short_timeouts():
    spec = demo_campaign_spec(release(), now=datetime(2026, 11, 30, 19, 43, tzinfo=UTC))

    assert spec.release_version == "3.5.0"
    assert spec.target.models == ("Tesla Model 3", "Ford Mustang Mach-E")
    assert [w.percent for w in spec.waves] == [10, 30, 60]
    assert all(w.success_threshold_pct == 80 and w.error_threshold_pct == 10 for w in spec.waves)
    assert spec.abort.failure_pct == 20 and spec.abort.min_executed == 5
    assert spec.in_progress_timeout_s <= 600 and spec.defer_recheck_s <= 60
    assert spec.eligibility.require_parked and len(spec.eligibility.maintenance_windows) == 1
    assert spec.delivery.install is InstallPolicy.WINDOW  # download now, install in the window
    assert spec.name == "Demo rollout 3.5.0 (30 Nov 19:43 UTC)"
    assert wave_sizes(56, spec.waves) == [6, 17, 33]


@pytest.mark.parametrize("hour", [0, 4, 9, 13, 18, 23])
def test_the_demo_window_opens_within_minutes_in_california_and_is_already_open_in_the_other_metros(hour):
    now = datetime(2026, 12, 1, hour, 20, tzinfo=UTC)
    (window,) = demo_campaign_spec(release(), now=now).eligibility.maintenance_windows

    def inside(metro, at):
        return window.contains(at.astimezone(ZoneInfo(metro.timezone)))

    west = [m for m in METROS if m.timezone == "America/Los_Angeles"]
    assert west and not any(inside(m, now) for m in west)  # the Californian vehicles wait ...
    assert all(inside(m, now + timedelta(minutes=5)) for m in west)  # ... a few minutes
    assert all(inside(m, now) for m in METROS if m not in west)


def test_the_demo_campaign_prefers_the_demo_release_over_a_newer_one():
    world = FakeWorld()
    assert demo_release(world.ports) is None
    world.releases.put_release(release("4.0.0"))
    assert demo_release(world.ports).version == "4.0.0"  # no demo release: the newest

    world.releases.put_release(release(DEMO_RELEASE_VERSION))

    assert demo_release(world.ports).version == DEMO_RELEASE_VERSION


# ------------------------------------------------------------------ the demo fleet and release


def test_the_demo_fleet_runs_time_compressed_with_wall_clock_readings_from_a_busy_weekday():
    options = demo_fleet_options(100, now=datetime(2026, 11, 29, 3, tzinfo=UTC))  # a Sunday
    argv = options.argv()

    assert options.speed == 60 and options.seed is not None
    assert "--wall-clock" in argv and "--fleet-share" in argv
    assert argv[argv.index("--start") + 1] == "2026-11-27T15:30:00+00:00"  # the Friday before
    assert demo_start(datetime(2026, 11, 30, 23, tzinfo=UTC)).isoformat() == "2026-11-30T15:30:00+00:00"
    assert time_compression(json.loads(json.dumps(options.__dict__))) == 60
    assert time_compression({"speed": 1.0}) is None


def test_the_demo_image_is_a_deterministic_few_hundred_kilobytes():
    image = demo_firmware_image()

    assert 100_000 < DEMO_IMAGE_BYTES <= len(image) < 1_000_000
    assert image == demo_firmware_image()
    assert image != demo_firmware_image("3.4.1")


def test_the_demo_release_targets_the_most_common_models_and_all_their_hardware():
    vehicles = provisioned(9, ("A", "A", "A", "B", "B", "C", "D"))

    models, hw_revs = demo_release_target(vehicles)

    assert models == ["A", "B", "C"]
    assert hw_revs == ["HW3", "HW4"]


def test_the_demo_release_is_published_signed_once_even_before_any_vehicle_reported():
    world = FakeWorld()
    vehicles = provisioned(6, ("Tesla Model 3", "Tesla Model Y"))

    first = ensure_demo_release(world.ports, vehicles)
    again = ensure_demo_release(world.ports, vehicles)

    assert first is not None and first.version == DEMO_RELEASE_VERSION
    assert set(first.manifest.models) == {"Tesla Model 3", "Tesla Model Y"}
    assert first.manifest.size_bytes == len(demo_firmware_image()) and first.signature
    assert again is None
    assert world.audit.actions(f"firmware#{DEMO_RELEASE_VERSION}") == ["PUBLISH"]


def test_the_demo_release_carries_deltas_from_the_fleets_versions_whose_images_it_publishes_first():
    world = FakeWorld()
    vehicles = provisioned(6, ("Tesla Model 3",))
    for i, vehicle in enumerate(vehicles):
        vehicle["firmware_version"] = ("3.4.1", "3.4.1", "3.4.1", "3.4.0", "3.4.0", "2.4.1")[i]

    release = ensure_demo_release(world.ports, vehicles)

    assert release is not None
    assert [d.source_version for d in release.deltas] == ["3.4.1", "3.4.0", "2.4.1"]
    for delta in release.deltas:
        base = world.releases.get_release(delta.source_version)
        assert base is not None and base.manifest.sha256 == delta.manifest.source_sha256
        assert delta.manifest.target_sha256 == release.manifest.sha256
    sizes = {d.source_version: d.manifest.size_bytes for d in release.deltas}
    assert release.manifest.size_bytes > 5 * sizes["3.4.1"], "a delta from the last version is small"
    assert sizes["2.4.1"] > sizes["3.4.1"], "an older source is further away"


def test_without_a_fleet_definition_no_demo_release_is_published():
    world = FakeWorld()

    assert ensure_demo_release(world.ports, None) is None
    assert not world.releases.release_exists(DEMO_RELEASE_VERSION)


def test_the_fleet_file_is_read_back_and_a_damaged_one_counts_as_absent(tmp_path):
    assert read_fleet_file(tmp_path) is None
    (tmp_path / "fleet.json").write_text(json.dumps({"seed": 1, "vehicles": [*provisioned(2), {"x": 1}]}))
    assert [v["vin"] for v in read_fleet_file(tmp_path) or []] == ["VIN00000000000000", "VIN00000000000001"]
    (tmp_path / "fleet.json").write_text("{not json")
    assert read_fleet_file(tmp_path) is None


# ------------------------------------------------------------------ honest counts


def test_provisioned_vehicles_that_never_reported_count_in_the_fleet_and_as_offline():
    # Given 4 reporting vehicles (3 online) and a fleet definition with 2 of them plus 6 silent ones
    reported = normalize_fleet(sample_fleet(4, seed=3))
    reported["online"] = [True, True, True, False]
    definition = [{"vin": v} for v in reported["vin"][:2]] + provisioned(6)

    # When the fleet is counted from what was provisioned
    fleet = with_provisioned(reported, definition)
    k = fleet_kpis(fleet)

    # Then the never-reported vehicles are in the total, apart, and pull online % down
    assert k.vehicles == 10 and k.never_reported == 6 and k.reported == 4
    assert k.online == 3 and k.online_pct == 30.0
    silent = fleet[fleet["status"] == NEVER_REPORTED]
    assert len(silent) == 6 and not silent["online"].any() and silent["lat"].isna().all()
    assert set(silent["firmware_version"]) == {"3.4.1"}


def test_without_a_fleet_definition_the_counts_are_those_that_reported():
    reported = normalize_fleet(sample_fleet(5, seed=3))

    assert with_provisioned(reported, None) is reported
    assert fleet_kpis(reported).never_reported == 0


def test_a_fleet_that_never_reported_at_all_is_counted_whole_and_zero_online():
    empty = normalize_fleet(pd.DataFrame())

    k = fleet_kpis(with_provisioned(empty, provisioned(3)))

    assert (k.vehicles, k.never_reported, k.online_pct) == (3, 3, 0.0)


# ------------------------------------------------------------------ the map


def test_the_map_colours_vehicles_by_their_state_in_the_chosen_campaign():
    fleet = normalize_fleet(sample_fleet(6, seed=4))
    deployments = pd.DataFrame({"vin": fleet["vin"][:3], "state": ["SUCCEEDED", "DOWNLOADING", "DEFERRED"]})

    coloured = with_deployments(fleet, deployments)
    figure = offline_map(coloured, "Deployment state")

    assert coloured["deployment"].tolist() == ["SUCCEEDED", "DOWNLOADING", "DEFERRED"] + [NOT_TARGETED] * 3
    colours = {t.name: t.marker.color for t in figure.data}
    assert colours["SUCCEEDED"] == "#16a34a" and NOT_TARGETED in colours
    assert with_deployments(fleet, pd.DataFrame())["deployment"].eq(NOT_TARGETED).all()


def test_the_map_zooms_to_a_metro_with_the_offline_outlines():
    fleet = normalize_fleet(sample_fleet(50, seed=4))

    figure = offline_map(fleet, "Status", "Berlin")

    geo = figure.layout.geo
    assert "Berlin" in scope_names() and "Fleet extent" in scope_names()
    assert {t.type for t in figure.data} == {"scattergeo"}
    assert geo.scope == "world" and geo.resolution == 50
    assert geo.lataxis.range[0] < 52.35 < 52.65 < geo.lataxis.range[1]
    assert geo.lonaxis.range[0] < 13.10 < 13.75 < geo.lonaxis.range[1]
