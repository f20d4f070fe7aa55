"""The processor keeps registry answers a day, and the change feed brings every change within 10 s."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import timedelta

from ingest_fakes import NOW, FakeChangeFeed, FakeRegistry, fake_ports, ndjson, record, registered, vin

from fleetota_core.adapters.vehicle_registry import registry_item, vehicle_from_registry_item
from fleetota_core.domain.enrichment import ReleaseCatalog
from fleetota_core.domain.registry_changes import CHANGE_RETENTION_S, RegistryChanges
from fleetota_core.services.ingest.batch import TelemetryPipeline
from fleetota_core.services.ingest.registry_cache import REGISTERED_TTL_S, RegistryCache
from fleetota_core.services.ingest.registry_entries import PackedRegistrations
from fleetota_core.services.ingest.telemetry_object import ingest_object

DAY = 24 * 3600.0


def cache_over(*vehicles, feed=None, **options):
    now = [0.0]
    inner = FakeRegistry(list(vehicles))
    feed = feed or FakeChangeFeed()
    return RegistryCache(inner, feed, clock=lambda: now[0], **options), inner, feed, now


def reasons(ports, key):
    return [(line.reason, line.detail.split(":")[0]) for line in ports.quarantine.lines.get(key, [])]


def test_a_retired_vehicle_is_quarantined_on_the_first_object_after_the_next_feed_read():
    # Given a warm processor that accepted vehicles 1 and 2 a moment ago
    cache, inner, feed, now = cache_over(registered(1), registered(2))
    ports = fake_ports()
    ports.registry = cache
    ingest_object(ports.objects.put("raw/a", ndjson(record(1), record(2))), ports, ReleaseCatalog(), NOW)
    assert ports.ledger.counters["stored"] == 2
    # When vehicle 1 is retired (the registry is written, then the feed)
    inner.vehicles[vin(1)] = registered(1, status="retired")
    feed.record([vin(1)])
    # Then its records are quarantined on the first object once the feed is read again (10 s on),
    # though its cached answer is fresh for another day; vehicle 2 costs no registry read.
    now[0] = 10.0
    later = NOW + timedelta(seconds=10)
    body = ndjson(record(1, seq=2, ts=later), record(2, seq=2, ts=later))
    ingest_object(ports.objects.put("raw/b", body), ports, ReleaseCatalog(), later)
    assert reasons(ports, "raw/b") == [("unknown_vehicle", f"vin {vin(1)}")]
    assert inner.calls[-1] == {vin(1)} and len(inner.calls) == 2
    assert ports.ledger.counters["stored"] == 3


def test_a_change_waits_at_most_for_the_next_feed_read_which_comes_at_most_every_10_s():
    cache, inner, feed, now = cache_over(registered(1))
    cache.get_many([vin(1)])
    inner.vehicles[vin(1)] = registered(1, status="retired")
    feed.record([vin(1)])
    for t in (1.0, 5.0, 9.9):  # within 10 s of the last read: neither the feed nor the table is asked
        now[0] = t
        assert set(cache.get_many([vin(1)])) == {vin(1)}
    assert feed.reads == 1 and len(inner.calls) == 1
    now[0] = 10.0
    assert not cache.get_many([vin(1)])[vin(1)].active  # the table's answer: retired
    assert feed.reads == 2 and len(inner.calls) == 2


def test_an_untouched_vehicle_costs_no_registry_read_for_24_hours_while_others_change():
    cache, inner, feed, now = cache_over(registered(1), registered(2))
    cache.get_many([vin(1), vin(2)])
    for hour in range(1, 24):
        now[0] = hour * 3600.0
        feed.record([vin(2)], NOW + timedelta(hours=hour))  # vehicle 2 is edited every hour
        assert set(cache.get_many([vin(1)])) == {vin(1)}
    now[0] = DAY - 1
    cache.get_many([vin(1)])
    assert [asked for asked in inner.calls if vin(1) in asked] == [{vin(1), vin(2)}]
    now[0] = DAY  # a day on, the answer is read again
    cache.get_many([vin(1)])
    assert inner.calls[-1] == {vin(1)}
    assert feed.reads == 25


def test_a_new_epoch_drops_every_cached_answer():
    feed = FakeChangeFeed(max_changes=3)
    cache, inner, feed, now = cache_over(registered(1), registered(2), feed=feed)
    cache.get_many([vin(1), vin(2)])
    feed.record([vin(n) for n in range(10, 14)])  # 4 changes > 3: the feed overflows
    assert feed.changes.epoch == 1 and feed.changes.changed_ms == {}
    now[0] = 10.0
    cache.get_many([vin(1), vin(2)])
    assert inner.calls == [{vin(1), vin(2)}] * 2


def test_the_feed_prunes_changes_older_than_the_cache_keeps_answers_and_bumps_the_epoch_on_overflow():
    t0 = int(NOW.timestamp() * 1000)
    feed = RegistryChanges().with_changes([vin(1)], t0).with_changes([vin(2)], t0 + 3_600_000)
    assert feed.changed_ms == {vin(1): t0, vin(2): t0 + 3_600_000} and feed.version == 2
    later = feed.with_changes([vin(3)], t0 + CHANGE_RETENTION_S * 1000 + 1)
    assert set(later.changed_ms) == {vin(2), vin(3)} and later.epoch == 0
    assert REGISTERED_TTL_S < CHANGE_RETENTION_S  # nothing is pruned that a cached answer predates
    full = later.with_changes([vin(n) for n in range(10, 20)], t0 + 1, max_changes=5)
    assert (full.epoch, full.version, dict(full.changed_ms)) == (1, 4, {})


def test_a_second_change_in_the_same_millisecond_is_still_new_to_readers():
    t0 = int(NOW.timestamp() * 1000)
    seen = RegistryChanges().with_changes([vin(1)], t0)
    again = seen.with_changes([vin(1)], t0)
    assert again.evictions(seen) == {vin(1)}
    assert seen.evictions(again) == set()  # a lagging replica's older version evicts nothing
    assert again.evictions(None) is None  # a first read drops everything


def test_an_answer_read_from_the_table_before_a_feed_eviction_is_not_kept():
    cache, inner, feed, now = cache_over(registered(1), registered(2))
    cache.get_many([vin(2)])
    read = inner.get_many

    def slow_read(vins):
        answer = read(vins)  # the old registration, read while the writer changes it
        inner.vehicles[vin(1)] = registered(1, status="retired")
        feed.record([vin(1)])
        now[0] = 10.0
        cache.get_many([vin(2)])  # another object's thread reads the feed meanwhile
        return answer

    inner.get_many = slow_read
    assert cache.get_many([vin(1)])[vin(1)].active  # answered from the read in flight
    inner.get_many = read
    assert not cache.get_many([vin(1)])[vin(1)].active  # but not kept: the table is asked again


def test_the_cache_is_a_bounded_lru_and_clear_forgets_everything():
    cache, inner, _, _ = cache_over(*(registered(n) for n in range(3)), max_vehicles=2)
    for n in (0, 1, 0, 2):  # 0 used again before 2 arrives: 1 is the least recently used
        cache.get_many([vin(n)])
    assert len(cache) == 2
    cache.get_many([vin(0), vin(2)])
    assert len(inner.calls) == 3
    cache.get_many([vin(1)])
    assert inner.calls[-1] == {vin(1)}
    cache.clear()
    cache.get_many([vin(0)])
    assert inner.calls[-1] == {vin(0)}


def test_a_packed_answer_is_the_validated_registration_and_fits_a_million_in_the_processor():
    vehicles = [
        vehicle_from_registry_item(registry_item(registered(n % 50, region=f"r{n % 7}"))) for n in range(50)
    ]
    packed = PackedRegistrations()
    for v in vehicles:
        fresh, back = packed.unpack(v.vin, packed.pack(v, 1.0), 0.0)
        assert fresh and back == v and back.model_dump() == v.model_dump() and back.active
    assert packed.unpack(vin(1), packed.pack(None, 1.0), 0.0) == (True, None)
    assert packed.unpack(vin(1), packed.pack(vehicles[1], 1.0), 1.0) == (False, None)  # expired
    odd = vehicles[0].public_key_pem.replace("\n", "\r\n")  # not rebuilt from its body: kept whole
    kept = packed.unpack(
        vin(0), packed.pack(vehicles[0].model_copy(update={"public_key_pem": odd}), 1.0), 0.0
    )
    assert kept[1] is not None and kept[1].public_key_pem == odd

    # Memory per cached vehicle, as the processor holds them (a fresh VIN string per key).
    cache, inner, _, _ = cache_over()
    pem = vehicles[0].public_key_pem
    n = 5_000
    inner.vehicles = {
        f"{n:017d}": vehicles[0].model_copy(update={"vin": vin(0)}) for n in range(n)
    }  # the VIN field is not kept per entry apart from its key
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for start in range(0, n, 1000):
        cache.get_many([f"{i:017d}" for i in range(start, start + 1000)])
    gc.collect()
    per_entry = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    print(f"\n{per_entry:.0f} bytes per cached registration (PEM {len(pem)} characters)")
    assert len(cache) == n and per_entry < 380  # 1.1M entries stay under ~420 MB of the processor's 1,024 MB


def test_a_local_reset_a_new_stack_generation_clears_the_cache():
    cache, inner, feed, _ = cache_over(registered(1))
    ports = fake_ports()
    ports.registry = cache
    generation = ["a"]
    pipeline = TelemetryPipeline(ports, ReleaseCatalog, generation=lambda: generation[0])
    pipeline.begin_batch()
    cache.get_many([vin(1)])
    pipeline.begin_batch()  # same generation: kept
    cache.get_many([vin(1)])
    assert len(inner.calls) == 1
    generation[0] = "b"  # `local reset` wiped the stack's data
    pipeline.begin_batch()
    cache.get_many([vin(1)])
    assert len(inner.calls) == 2 and feed.reads == 2  # the feed is followed afresh too


def test_a_read_it_must_make_anyway_takes_along_the_answers_due_within_4_hours_100_to_a_request():
    # Given 150 vehicles cached at 0 h and 50 more at 12 h
    early = [registered(n) for n in range(1, 151)]
    late = [registered(n) for n in range(151, 201)]
    cache, inner, _, now = cache_over(*early, *late, registered(999))
    cache.get_many([vin(n) for n in range(1, 151)])
    now[0] = 12 * 3600.0
    cache.get_many([vin(n) for n in range(151, 201)])
    # When, at 21 h, an object brings one vehicle the cache has not seen
    now[0] = 21 * 3600.0
    everyone = [vin(n) for n in range(1, 201)] + [vin(999)]
    answer = cache.get_many(everyone)
    # Then its read is filled up to 100 keys with the answers that expire first (the 0 h ones, due at
    # 24 h); the 12 h ones, due at 36 h, are not read early
    assert set(answer) == set(everyone)
    assert len(inner.calls[-1]) == 100 and vin(999) in inner.calls[-1]
    assert inner.calls[-1] - {vin(999)} <= {vin(n) for n in range(1, 151)}
    # And at 24 h the other 51 early ones go in one request, with nothing due to fill it (the 12 h
    # ones are due at 36 h, the ones read at 21 h at 45 h)
    calls = len(inner.calls)
    now[0] = DAY
    cache.get_many(everyone)
    assert len(inner.calls) == calls + 1
    assert inner.calls[-1] == {vin(n) for n in range(1, 151)} - inner.calls[-2]


def test_no_read_is_made_to_top_up_when_every_answer_is_fresh():
    cache, inner, _, now = cache_over(*(registered(n) for n in range(1, 11)))
    cache.get_many([vin(n) for n in range(1, 11)])
    now[0] = DAY - 60  # every answer is due within the hour, none has expired
    assert len(cache.get_many([vin(n) for n in range(1, 11)])) == 10
    assert len(inner.calls) == 1
