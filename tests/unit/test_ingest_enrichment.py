"""Enrichment and the material-change rule that keeps vehicle writes down."""

from __future__ import annotations

from datetime import timedelta

import msgspec
from ingest_fakes import NOW, record

from fleetota_core.domain.enrichment import (
    OFFLINE_AFTER,
    ReleaseCatalog,
    ReleaseSummary,
    StoredState,
    enrich,
    is_material,
    is_newer,
    place_of,
)
from fleetota_core.services.ingest.wire import WireRecord

CATALOG = ReleaseCatalog(
    [
        ReleaseSummary("1.1.0", frozenset({"Model 3"}), frozenset()),
        ReleaseSummary("2.0.0-rc.1", frozenset({"Model 3"}), frozenset({"HW4"})),
        ReleaseSummary("1.5.0", frozenset({"Model Y"}), frozenset()),
    ]
)


def reading(**changes) -> WireRecord:
    return msgspec.json.decode(msgspec.json.encode(record(1, **changes)), type=WireRecord)


def stored_from(r: WireRecord) -> StoredState:
    return StoredState.of(enrich(r, CATALOG, NOW))


def test_enrichment_derives_region_battery_identity_online_and_needs_update():
    state = enrich(
        reading(battery={"soc_pct": 8.0, "voltage_v": 350.0, "temp_c": 20.0, "charging": True}), CATALOG, NOW
    )
    assert (state.region, state.metro) == ("us-west", "San Francisco Bay Area")
    assert state.battery_category == "critical" and state.charging
    assert (state.make, state.model_year) == ("Tesla", 2023)
    assert state.online
    assert state.needs_update and state.newest_compatible == "1.1.0"  # the HW4 pre-release does not fit


def test_a_vehicle_on_the_newest_compatible_release_does_not_need_an_update():
    assert not enrich(reading(firmware_version="1.1.0"), CATALOG, NOW).needs_update
    assert not enrich(reading(model="Unknown"), CATALOG, NOW).needs_update


def test_an_old_reading_or_no_network_is_offline():
    assert not enrich(reading(ts=NOW - OFFLINE_AFTER - timedelta(seconds=1)), CATALOG, NOW).online
    offline = reading(connectivity={"network": "NONE", "signal_dbm": None})
    assert not enrich(offline, CATALOG, NOW).online


def test_a_position_far_from_every_metro_has_an_unknown_region():
    assert place_of(0.0, 0.0) == ("unknown", None, "UTC")


def test_newer_means_later_ts_then_higher_seq():
    base = reading(seq=5, ts=NOW - timedelta(seconds=10))
    stored = stored_from(base)
    assert is_newer(reading(seq=6, ts=NOW - timedelta(seconds=10)), stored, NOW)
    assert not is_newer(reading(seq=5, ts=NOW - timedelta(seconds=10)), stored, NOW)
    assert not is_newer(reading(seq=99, ts=NOW - timedelta(seconds=11)), stored, NOW)
    assert is_newer(base, None, NOW)


def test_small_moves_and_unchanged_state_are_not_material():
    stored = stored_from(reading(ts=NOW - timedelta(seconds=30)))
    nearby = {"lat": 37.771, "lon": -122.421, "speed_kph": 20.0, "heading_deg": 10.0}
    assert not is_material(reading(position=nearby), stored, NOW)


def test_each_material_change_is_material():
    stored = stored_from(reading(ts=NOW - timedelta(seconds=30)))
    far = {"lat": 37.80, "lon": -122.42, "speed_kph": 20.0, "heading_deg": 10.0}
    low = {"soc_pct": 25.0, "voltage_v": 390.0, "temp_c": 24.0, "charging": False}
    ota = {"campaign_id": "c", "deployment_id": "c.v", "status": "DOWNLOADING", "target_version": "1.1.0"}
    for change in (
        {"drive_state": "parked"},
        {"connectivity": {"network": "NONE", "signal_dbm": None}},
        {"firmware_version": "1.1.0"},
        {"battery": low},
        {"position": far},
        {"ota": ota},
    ):
        assert is_material(reading(**change), stored, NOW), change
    assert is_material(reading(), None, NOW)


def test_time_alone_is_not_material_last_seen_travels_in_the_snapshot_delta():
    # Issue #16: no heartbeat write. An hour of identical readings costs no DynamoDB write.
    hour_ago = reading(ts=NOW - timedelta(hours=1))
    stored = StoredState.of(enrich(hour_ago, CATALOG, hour_ago.ts))  # as written an hour ago
    assert not is_material(reading(), stored, NOW)


def test_a_stored_state_dated_after_the_reading_is_replaced_at_once():
    stored = stored_from(reading(ts=NOW + timedelta(minutes=1)))
    assert is_material(reading(), stored, NOW)
