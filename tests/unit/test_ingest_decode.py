"""Decoding telemetry objects: the fast mirror never accepts what TelemetryRecord rejects."""

from __future__ import annotations

import copy
import gzip
import json
from datetime import timedelta

import pydantic
import pytest
from ingest_fakes import NOW, record

from fleetota_core.domain.telemetry import TelemetryRecord
from fleetota_core.services.ingest.decode import (
    MAX_LINE_BYTES,
    DecodeLimits,
    UnreadableObjectError,
    decode_lines,
    decode_object,
    gunzip,
)
from fleetota_core.services.ingest.wire import RECORD_DECODER, DecodeError, WireRecord

OTA = {
    "campaign_id": "c1",
    "deployment_id": "c1.v",
    "status": "DOWNLOADING",
    "target_version": "1.2.0",
    "attempt": 2,
    "progress_pct": 50.0,
    "error_code": None,
    "detail": None,
}

HEALTH = {
    "observed_s": 7200,
    "dtc_count": 3,
    "reboots": 0,
    "link_drops": 12,
    "parked_s": 5400,
    "parked_drain_pct": 0.42,
    "last_dtc": "P0A80",
}


def _set(body: dict, path: str, value: object) -> dict:
    out = copy.deepcopy(body)
    *parents, leaf = path.split(".")
    node = out
    for part in parents:
        node = node[part]
    if value is _DELETE:
        node.pop(leaf)
    else:
        node[leaf] = value
    return out


_DELETE = object()
# (path, value): boundaries, wrong types, lax coercions, nulls, extra fields, odd strings.
MUTATIONS = [
    ("seq", -1), ("seq", 0), ("seq", 1.0), ("seq", "5"), ("seq", True), ("seq", 2**70),
    ("vin", "5YJ3E1EA0PF00000"), ("vin", None), ("vin", 12345678901234567),
    ("ts", "2026-11-26T19:59:00"), ("ts", "2026-11-26T19:59:00+02:00"), ("ts", "2026-11-26 19:59:00Z"),
    ("ts", 1795723140), ("ts", "yesterday"), ("ts", "2026-11-26t19:59:00z"),
    ("model", ""), ("model", "m" * 64), ("model", "m" * 65), ("hw_rev", "h" * 17),
    ("position.lat", 90), ("position.lat", 90.0001), ("position.lat", -90), ("position.lon", 180.5),
    ("position.speed_kph", -0.1), ("position.speed_kph", 300), ("position.heading_deg", 360),
    ("position.heading_deg", 359.99), ("position.lat", "37.7"), ("position.extra", 1),
    ("battery.soc_pct", 100.01), ("battery.soc_pct", 0), ("battery.charging", 1),
    ("battery.charging", "true"), ("battery.temp_c", -50.5), ("battery.voltage_v", 1000),
    ("drive_state", "flying"), ("drive_state", "DRIVING"), ("connectivity.network", "4G"),
    ("connectivity.signal_dbm", -141), ("connectivity.signal_dbm", -20), ("connectivity.signal_dbm", -80.0),
    ("connectivity.signal_dbm", None), ("connectivity.signal_dbm", _DELETE),
    ("odometer_km", 5_000_000.5), ("firmware_version", "1.2"), ("firmware_version", "1.2.3\n"),
    ("firmware_version", "01.2.3"), ("firmware_version", "1.2.3-rc.1"), ("firmware_version", "1.2.3-"),
    ("schema_version", 2), ("schema_version", None), ("schema_version", _DELETE), ("schema_version", 1.0),
    ("ota", None), ("ota", _DELETE), ("ota", OTA), ("ota", {**OTA, "status": "PAUSED"}),
    ("ota", {**OTA, "attempt": 0}), ("ota", {**OTA, "attempt": None}), ("ota", {**OTA, "detail": "d" * 513}),
    ("ota", {**OTA, "target_version": "x"}), ("ota", {**OTA, "campaign_id": ""}), ("ota", {**OTA, "x": 1}),
    ("extra_field", 1), ("position", None), ("battery", [1, 2]),
    ("health", None), ("health", HEALTH), ("health", {**HEALTH, "last_dtc": None}),
    ("health", {**HEALTH, "last_dtc": "P0A8"}), ("health", {**HEALTH, "last_dtc": "P0A80\n"}),
    ("health", {**HEALTH, "last_dtc": "X0A80"}), ("health", {**HEALTH, "dtc_count": -1}),
    ("health", {**HEALTH, "reboots": 1.0}), ("health", {**HEALTH, "observed_s": 2**53}),
    ("health", {**HEALTH, "parked_drain_pct": -0.1}),
    ("health", {k: v for k, v in HEALTH.items() if k != "link_drops"}),
    ("health", {**HEALTH, "x": 1}),
    ("changed", True), ("changed", False), ("changed", None), ("changed", 1), ("changed", "true"),
    ("changed", [True]),
]  # fmt: skip


# Stable ids (the same in every pytest-xdist worker): the deletion sentinel has no stable repr.
MUTATION_IDS = [f"{p}={'<deleted>' if v is _DELETE else repr(v)}"[:60] for p, v in MUTATIONS]


@pytest.mark.parametrize(("path", "value"), MUTATIONS, ids=MUTATION_IDS)
def test_the_fast_mirror_accepts_a_record_only_if_telemetry_record_accepts_it_with_equal_values(path, value):
    line = json.dumps(_set(record(1), path, value)).encode()
    try:
        wire = RECORD_DECODER.decode(line)
    except DecodeError:
        return  # stricter is allowed: pydantic then decides
    model = TelemetryRecord.model_validate_json(line)  # must not raise
    assert model.model_dump(mode="json") == TelemetryRecord.model_validate_json(
        json.dumps(_to_json(wire))
    ).model_dump(mode="json")


def _to_json(wire: WireRecord) -> object:
    import msgspec

    return msgspec.to_builtins(wire)


def test_the_mirror_has_exactly_the_fields_of_telemetry_record():
    import msgspec

    def fields(struct: type) -> set[str]:
        return {f.name for f in msgspec.structs.fields(struct)}

    assert fields(WireRecord) == set(TelemetryRecord.model_fields)


@pytest.mark.parametrize(("path", "value"), MUTATIONS, ids=MUTATION_IDS)
def test_decoding_agrees_with_telemetry_record_on_every_mutation(path, value):
    body = _set(record(1), path, value)
    line = json.dumps(body).encode()
    try:
        TelemetryRecord.model_validate_json(line)
        valid = True
    except pydantic.ValidationError:
        valid = False
    decoded = decode_lines([line], NOW)
    assert (len(decoded.records), len(decoded.quarantined)) == ((1, 0) if valid else (0, 1))


def test_a_bad_line_never_costs_the_good_lines_and_line_numbers_point_at_the_bad_ones():
    good = json.dumps(record(1)).encode()
    lines = [good, b"", b"{broken", good, b'{"a": 1}{"b": 2}', good]
    decoded = decode_lines(lines, NOW)
    assert len(decoded.records) == 3
    assert [(q.line, q.reason) for q in decoded.quarantined] == [(2, "malformed_json"), (4, "malformed_json")]


def test_oversized_lines_and_future_timestamps_are_quarantined_with_their_reason():
    huge = json.dumps(record(1, model="m" * MAX_LINE_BYTES)).encode()
    future = json.dumps(record(2, ts=NOW + timedelta(seconds=61))).encode()
    near = json.dumps(record(3, ts=NOW + timedelta(seconds=59))).encode()
    decoded = decode_lines([huge, future, near], NOW)
    assert [q.reason for q in decoded.quarantined] == ["line_too_large", "future_timestamp"]
    assert len(decoded.records) == 1


def test_lax_values_pydantic_accepts_are_stored_as_normalised_records():
    line = json.dumps(record(1, seq="7")).encode()
    (wire,) = decode_lines([line], NOW).records
    assert wire.seq == 7


def test_gzip_bombs_and_truncated_streams_are_unreadable_objects():
    with pytest.raises(UnreadableObjectError) as bomb:
        gunzip(gzip.compress(b"0" * 2_000_000), DecodeLimits(max_bytes=1_000_000))
    assert bomb.value.reason == "object_too_large"
    with pytest.raises(UnreadableObjectError) as cut:
        gunzip(gzip.compress(b"x" * 1000)[:-4])
    assert cut.value.reason == "corrupt_gzip"


def test_crlf_lines_and_a_missing_final_newline_decode():
    body = b"\r\n".join(json.dumps(record(n)).encode() for n in range(3))
    assert len(decode_object("raw/a.ndjson", body, NOW).records) == 3
