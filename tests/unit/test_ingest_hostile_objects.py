"""Hostile telemetry objects: decompression is bounded by bytes, lines and time, a bounded object is
quarantined by reference (never copied), and every gzip member is read and counted."""

from __future__ import annotations

import gzip
import itertools
import json
from typing import Any

import pytest
from ingest_fakes import NOW, fake_ports, ndjson, record

from fleetota_core.adapters.telemetry_objects import S3Quarantine
from fleetota_core.domain.enrichment import ReleaseCatalog
from fleetota_core.services.ingest.decode import (
    MAX_OBJECT_BYTES,
    MAX_OBJECT_LINES,
    MAX_RAW_EXCERPTS,
    DecodeLimits,
    UnreadableObjectError,
    decode_object,
)
from fleetota_core.services.ingest.ports import ObjectRef
from fleetota_core.services.ingest.telemetry_object import ingest_object

CATALOG = ReleaseCatalog()
# The review's object: 1,975 bytes of gzip, 1,000,000 lines of "1" (JSON, but not a record).
MILLION_LINES = gzip.compress(b"1\n" * 1_000_000)


def test_the_review_object_is_the_one_described():
    assert len(MILLION_LINES) == 1975


def test_a_million_line_gzip_is_quarantined_by_reference_with_its_counts_and_no_line_copied():
    ports = fake_ports()
    ref = ports.objects.put("raw/dt=2026-11-26/hour=20/million.ndjson.gz", MILLION_LINES)

    outcome = ingest_object(ref, ports, CATALOG, NOW)

    assert outcome.object_quarantined == "too_many_lines"
    assert ports.quarantine.lines == {}  # nothing copied line by line
    reason, detail = ports.quarantine.objects[ref.key]
    assert reason == "too_many_lines" and str(MAX_OBJECT_LINES) in detail
    counts = ports.quarantine.object_counts[ref.key]
    assert counts["compressed_bytes"] == 1975
    assert (counts["lines"], counts["decompressed_bytes"], counts["gzip_members"]) == (
        1_000_000,
        2_000_000,
        1,
    )
    c = ports.ledger.counters
    assert (c["objects"], c["objects_quarantined"], c["objects_quarantined__too_many_lines"]) == (1, 1, 1)
    # An object quarantined whole adds no records: its lines were never judged.
    assert c["received"] == c["stored"] + c["quarantined"] == 0


class _RecordingS3:
    def __init__(self) -> None:
        self.puts: list[dict[str, Any]] = []

    def put_object(self, **kwargs: Any) -> None:
        self.puts.append(kwargs)


def test_the_quarantine_record_of_a_bounded_object_points_at_the_object_in_a_few_hundred_bytes():
    s3 = _RecordingS3()
    ref = ObjectRef("telemetry", "raw/million.ndjson.gz", etag="e1", size=len(MILLION_LINES))
    with pytest.raises(UnreadableObjectError) as exc:
        decode_object(ref.key, MILLION_LINES, NOW)
    S3Quarantine(s3, "telemetry").put_object_reference(
        ref, exc.value.reason, exc.value.detail, NOW, exc.value.counts
    )
    (put,) = s3.puts
    assert len(put["Body"]) < 500
    (row,) = [json.loads(line) for line in put["Body"].splitlines()]
    assert row["source"] == "s3://telemetry/raw/million.ndjson.gz" and row["etag"] == "e1"
    assert row["reason"] == "too_many_lines" and row["size"] == 1975
    assert row["counts"]["compressed_bytes"] == 1975 and row["counts"]["lines"] > MAX_OBJECT_LINES


def test_every_member_of_a_multi_member_gzip_is_read_and_counted():
    ports = fake_ports()
    members = [gzip.compress((json.dumps(record(n)) + "\n").encode()) for n in range(3)]
    body = b"".join(members) + gzip.compress(b"not json\n")
    ref = ports.objects.put("raw/members.ndjson.gz", body)

    ingest_object(ref, ports, CATALOG, NOW)

    c = ports.ledger.counters
    assert (c["received"], c["stored"], c["quarantined"], c["gzip_members"]) == (4, 3, 1, 4)
    assert c["received"] == c["stored"] + c["quarantined"]
    assert len(ports.vehicles.states) == 3


def test_zero_padding_after_the_last_member_is_ignored_but_other_trailing_bytes_are_corrupt():
    body = ndjson(record(1))
    assert len(decode_object("raw/a.ndjson.gz", body + b"\0" * 512, NOW).records) == 1
    with pytest.raises(UnreadableObjectError) as exc:
        decode_object("raw/a.ndjson.gz", body + b"garbage", NOW)
    assert exc.value.reason == "corrupt_gzip" and "after gzip member 1" in exc.value.detail


def test_a_gzip_bomb_stops_at_the_byte_bound_without_inflating_it_all():
    bomb = gzip.compress(b"\0" * 8_000_000)
    with pytest.raises(UnreadableObjectError) as exc:
        decode_object("raw/bomb.ndjson.gz", bomb, NOW, DecodeLimits(max_bytes=1_000_000))
    assert exc.value.reason == "object_too_large"
    assert exc.value.counts["decompressed_bytes"] == 1_000_001  # zlib stopped one byte past the bound


def test_plain_ndjson_with_too_many_lines_is_refused_too():
    with pytest.raises(UnreadableObjectError) as exc:
        decode_object("raw/plain.ndjson", b"1\n" * 50, NOW, DecodeLimits(max_lines=10))
    assert exc.value.reason == "too_many_lines"


def _ticking_clock(step: float) -> Any:
    ticks = itertools.count()
    return lambda: next(ticks) * step


def test_decompression_that_outlasts_the_time_bound_is_refused():
    body = b"".join(gzip.compress(b"1\n" * 10) for _ in range(5))  # the clock is read per member
    limits = DecodeLimits(max_seconds=2.0, clock=_ticking_clock(1.0))
    with pytest.raises(UnreadableObjectError) as exc:
        decode_object("raw/slow.ndjson.gz", body, NOW, limits)
    assert exc.value.reason == "decode_time_exceeded"
    assert exc.value.counts["gzip_members"] == 2  # two members read whole, the third cut short


def test_judging_lines_one_by_one_that_outlasts_the_time_bound_is_refused():
    body = ndjson(*[b"1"] * 5000)  # every line needs the slow path
    limits = DecodeLimits(max_seconds=3.0, clock=_ticking_clock(1.0))
    with pytest.raises(UnreadableObjectError) as exc:
        decode_object("raw/slow.ndjson.gz", body, NOW, limits)
    assert exc.value.reason == "decode_time_exceeded"
    assert exc.value.counts["lines_judged"] < 5000


def test_bad_lines_past_the_first_thousand_keep_their_reason_but_not_their_bytes():
    decoded = decode_object("raw/bad.ndjson.gz", ndjson(*[b"1"] * (MAX_RAW_EXCERPTS + 500)), NOW)
    assert len(decoded.quarantined) == MAX_RAW_EXCERPTS + 500
    assert all(q.raw == b"1" for q in decoded.quarantined[:MAX_RAW_EXCERPTS])
    rest = decoded.quarantined[MAX_RAW_EXCERPTS:]
    assert all(q.raw == b"" and q.reason == "schema_violation" for q in rest)


def test_an_object_announced_larger_than_the_bound_is_quarantined_unread():
    ports = fake_ports()
    ref = ports.objects.put("raw/huge.ndjson.gz", b"")
    ref = ObjectRef(ref.bucket, ref.key, etag="etag-1", size=MAX_OBJECT_BYTES + 1)
    outcome = ingest_object(ref, ports, CATALOG, NOW)
    assert outcome.object_quarantined == "object_too_large"
    assert ports.objects.reads == 0
    assert ports.quarantine.object_counts[ref.key] == {"compressed_bytes": MAX_OBJECT_BYTES + 1}
