"""Report by exception: a reading that says itself whether it is a material change (``changed``) is
decided without reading the vehicle's stored state; older clients keep the read-and-compare path."""

from __future__ import annotations

from datetime import timedelta

from ingest_fakes import NOW, fake_ports, ndjson, record, registered, signed, vin

from fleetota_core.domain.enrichment import ReleaseCatalog
from fleetota_core.services.ingest.hinted_writes import HintedWriteBound
from fleetota_core.services.ingest.telemetry_object import ingest_object

CATALOG = ReleaseCatalog()
OTA = {"campaign_id": "c1", "deployment_id": "c1.x", "target_version": "1.2.0", "status": "INSTALLING"}


def ingest(ports, name, *records, now=NOW):
    return ingest_object(ports.objects.put(f"raw/{name}.ndjson.gz", ndjson(*records)), ports, CATALOG, now)


def stored(ports, n=1):
    state = ports.vehicles.states[vin(n)]
    return state.last_seq, state.drive_state


def test_a_reading_flagged_changed_is_written_without_reading_the_stored_state():
    ports = fake_ports()

    outcome = ingest(ports, "a", record(1, changed=True), record(2, changed=True))

    assert ports.vehicles.read_calls == []
    assert ports.vehicles.update_calls == [[vin(1), vin(2)]]
    assert set(ports.vehicles.states) == {vin(1), vin(2)}
    assert outcome.counters["vehicle_writes"] == 2
    assert outcome.counters["vehicle_state_reads_avoided"] == 2
    assert "vehicle_states_read" not in outcome.counters


def test_a_reading_flagged_unchanged_is_neither_read_nor_written_but_reaches_the_snapshot_delta():
    ports = fake_ports()

    outcome = ingest(ports, "b", record(1, changed=False))

    assert ports.vehicles.read_calls == [] and ports.vehicles.update_calls == []
    assert ports.vehicles.states == {}
    assert outcome.counters["vehicle_writes_skipped"] == 1
    assert outcome.counters["vehicle_state_reads_avoided"] == 1
    assert [s.vin for s in outcome.states] == [vin(1)]


def test_readings_without_the_flag_are_still_judged_against_the_stored_state():
    ports = fake_ports()
    ingest(ports, "c1", record(1, seq=1))

    outcome = ingest(ports, "c2", record(1, seq=2, ts=NOW - timedelta(seconds=1)), record(2, changed=False))

    assert ports.vehicles.read_calls == [[vin(1)], [vin(1)]]  # only the old client's vehicle, each object
    assert outcome.counters["vehicles_seen"] == 2
    assert outcome.counters["vehicle_states_read"] == 1
    assert outcome.counters["vehicle_writes_skipped"] == 2  # the old client's reading is not material
    assert ports.vehicles.writes == 1


def test_the_stored_ota_status_survives_a_hinted_plain_write():
    ports = fake_ports()
    ingest(ports, "d1", signed(record(1, seq=1, ts=NOW - timedelta(seconds=30), ota=OTA, changed=False)))
    assert ports.vehicles.states[vin(1)].ota_status == "INSTALLING"  # an OTA report is written anyway

    ingest(ports, "d2", record(1, seq=2, drive_state="parked", changed=True))

    state = ports.vehicles.states[vin(1)]
    assert (state.last_seq, state.drive_state) == (2, "parked")
    assert (state.ota_status, state.ota_campaign_id) == ("INSTALLING", "c1")
    assert ports.vehicles.read_calls == []


def test_a_vehicle_flagging_every_reading_gets_at_most_one_write_per_30_s():
    ports = fake_ports()
    seconds = (0, 10, 20, 29, 31, 45, 62)
    outcomes = []
    for s in seconds:
        reading = record(1, seq=s, ts=NOW + timedelta(seconds=s - 1), changed=True)
        outcomes.append(ingest(ports, f"e{s}", reading, now=NOW + timedelta(seconds=s)))

    written = [s for s, o in zip(seconds, outcomes, strict=True) if o.counters["vehicle_writes"]]
    assert written == [0, 31, 62]
    assert sum(o.counters["vehicle_writes_deferred"] for o in outcomes) == 4
    assert [o.states[0].last_seq for o in outcomes] == list(seconds)  # every one reaches the snapshot delta


def test_an_ota_report_is_written_whatever_the_bound_says():
    ports = fake_ports()
    ingest(ports, "f1", record(1, seq=1, ts=NOW - timedelta(seconds=3), changed=True))

    report = signed(record(1, seq=2, ts=NOW - timedelta(seconds=2), ota=OTA, changed=True))
    outcome = ingest(ports, "f2", report)

    assert outcome.counters["vehicle_writes"] == 1 and "vehicle_writes_deferred" not in outcome.counters
    assert ports.vehicles.states[vin(1)].ota_status == "INSTALLING"
    # The report carries the OTA status itself: the whole item is written, not an update.
    assert ports.vehicles.update_calls == [[vin(1)]]


def test_a_change_the_bound_refused_is_written_with_the_next_reading_after_the_window():
    ports = fake_ports()
    ingest(ports, "g1", record(1, seq=1, ts=NOW - timedelta(seconds=1), changed=True))
    deferred = ingest(
        ports, "g2", record(1, seq=2, ts=NOW + timedelta(seconds=4), drive_state="parked", changed=True),
        now=NOW + timedelta(seconds=5),
    )  # fmt: skip
    assert deferred.counters["vehicle_writes_deferred"] == 1
    assert stored(ports) == (1, "driving")

    still_early = ingest(
        ports, "g3", record(1, seq=3, ts=NOW + timedelta(seconds=9), drive_state="parked", changed=False),
        now=NOW + timedelta(seconds=10),
    )  # fmt: skip
    late = ingest(
        ports, "g4", record(1, seq=4, ts=NOW + timedelta(seconds=39), drive_state="parked", changed=False),
        now=NOW + timedelta(seconds=40),
    )  # fmt: skip

    assert not {"vehicle_writes", "vehicle_writes_deferred"} & set(still_early.counters)
    assert late.counters["vehicle_writes"] == 1
    assert stored(ports) == (4, "parked")
    after = ingest(
        ports, "g5", record(1, seq=5, ts=NOW + timedelta(seconds=44), drive_state="parked", changed=False),
        now=NOW + timedelta(seconds=45),
    )  # fmt: skip
    assert after.counters["vehicle_writes_skipped"] == 1  # nothing owed any more


def test_a_hinted_reading_older_than_the_stored_state_is_refused_and_counted_stale():
    ports = fake_ports()
    ingest(ports, "h1", record(1, seq=7, ts=NOW - timedelta(seconds=1), changed=True))

    outcome = ingest(
        ports, "h2", record(1, seq=6, ts=NOW - timedelta(seconds=5), drive_state="parked", changed=True),
        now=NOW + timedelta(seconds=31),
    )  # fmt: skip

    assert outcome.counters["stale_vehicle_readings"] == 1 and "vehicle_writes" not in outcome.counters
    assert stored(ports) == (7, "driving")


def test_the_registry_decides_make_and_model_year_on_the_hinted_path_too():
    ports = fake_ports()
    ports.registry.vehicles[vin(1)] = ports.registry.vehicles[vin(1)].model_copy(
        update={"make": "Registry Make", "model_year": 2024}
    )

    ingest(ports, "i", record(1, changed=True))

    state = ports.vehicles.states[vin(1)]
    assert (state.make, state.model_year) == ("Registry Make", 2024)


def test_the_bound_forgets_the_oldest_vehicles_beyond_its_size():
    bound = HintedWriteBound(window_s=30, max_vehicles=2)
    assert bound.admit("a", 0) and bound.admit("b", 1) and bound.admit("c", 2)
    assert len(bound) == 2
    assert bound.admit("a", 3)  # forgotten, so allowed again: at worst one write early
    assert not bound.admit("c", 4) and bound.owes("c")


def test_a_vehicle_provisioned_minutes_ago_is_written_once_though_it_flags_nothing():
    # Its changed readings went before it was provisioned (quarantined unknown_vehicle), unknown to it
    ports = fake_ports()
    ports.registry.vehicles[vin(1)] = registered(1, provisioned_at=NOW - timedelta(minutes=2))

    def at(minutes: int, seq: int):
        now = NOW + timedelta(minutes=minutes)
        reading = record(1, seq=seq, ts=now - timedelta(seconds=1), changed=False)
        return ingest(ports, f"j{seq}", reading, record(2, seq=seq, changed=False), now=now)

    first, again = at(0, 1), at(1, 2)

    assert set(ports.vehicles.states) == {vin(1)}  # vin(2) was provisioned a month ago
    assert first.counters["vehicle_writes"] == 1 and "vehicle_writes" not in again.counters
    assert ports.vehicles.read_calls == []
    ports.hinted_writes.clear()  # another processor instance, or this one restarted
    assert at(2, 3).counters["vehicle_writes"] == 1
    ports.hinted_writes.clear()
    assert "vehicle_writes" not in at(4, 4).counters  # 6 minutes after provisioning: an old vehicle


def test_a_change_flagged_by_an_earlier_reading_of_the_object_is_written_with_the_newest():
    # Held back while offline, then sent together: the change, then readings no different from it
    ports = fake_ports()
    readings = [
        record(1, seq=1, ts=NOW - timedelta(seconds=30), drive_state="parked", changed=True),
        record(1, seq=2, ts=NOW - timedelta(seconds=20), drive_state="parked", changed=False),
        record(1, seq=3, ts=NOW - timedelta(seconds=10), drive_state="parked", changed=False),
    ]

    outcome = ingest(ports, "k", *reversed(readings))

    assert outcome.counters["vehicle_writes"] == 1
    assert stored(ports) == (3, "parked")
