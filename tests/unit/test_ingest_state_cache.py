"""The per-process vehicle state cache: fewer table reads, same decisions within its TTL."""

from __future__ import annotations

from datetime import timedelta

from ingest_fakes import NOW, FakeVehicles, fake_ports, ndjson, record, vin

from fleetota_core.domain.enrichment import ReleaseCatalog
from fleetota_core.services.ingest.state_cache import CachedVehicleStates
from fleetota_core.services.ingest.telemetry_object import ingest_object


class CountingVehicles(FakeVehicles):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get_many(self, vins):
        self.reads += len(vins)
        return super().get_many(vins)


def test_a_warm_cache_reads_each_vehicle_once_per_ttl_and_still_skips_immaterial_readings():
    clock = [0.0]
    table = CountingVehicles()
    ports = fake_ports()
    ports.vehicles = CachedVehicleStates(table, ttl=60, clock=lambda: clock[0])
    for step in range(5):
        clock[0] += 10
        ts = NOW - timedelta(seconds=50 - 10 * step)
        body = ndjson(*(record(n, seq=step + 1, ts=ts) for n in range(20)))
        ingest_object(ports.objects.put(f"raw/{step}.ndjson.gz", body), ports, ReleaseCatalog(), NOW)
    assert table.reads == 20  # once, when every vehicle was new
    assert table.writes == 20  # the first readings; the rest were immaterial
    assert ports.ledger.counters["vehicle_writes_skipped"] == 80


def test_an_expired_entry_is_read_again():
    clock = [0.0]
    table = CountingVehicles()
    cache = CachedVehicleStates(table, ttl=60, clock=lambda: clock[0])
    cache.get_many([vin(1)])
    clock[0] = 61
    cache.get_many([vin(1)])
    assert table.reads == 2


def test_a_write_lost_to_a_newer_state_forgets_the_entry():
    from dataclasses import replace

    table = CountingVehicles()
    ports = fake_ports()
    ports.vehicles = CachedVehicleStates(table, clock=lambda: 0.0)
    first = ndjson(record(1, seq=9, ts=NOW - timedelta(seconds=30)))
    ingest_object(ports.objects.put("raw/a.ndjson.gz", first), ports, ReleaseCatalog(), NOW)
    # Another process stores a newer reading behind this cache's back.
    table.states[vin(1)] = replace(table.states[vin(1)], last_seq=20, last_ts=NOW - timedelta(seconds=5))
    material = ndjson(record(1, seq=10, ts=NOW - timedelta(seconds=20), drive_state="parked"))

    outcome = ingest_object(ports.objects.put("raw/b.ndjson.gz", material), ports, ReleaseCatalog(), NOW)

    assert outcome.counters["stale_vehicle_readings"] == 1
    assert table.states[vin(1)].last_seq == 20
    assert ports.vehicles.get_many([vin(1)])[vin(1)].last_seq == 20
