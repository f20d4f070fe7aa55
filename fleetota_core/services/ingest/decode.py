"""Turn the bytes of one telemetry object into valid records and quarantined lines, each with a reason.

Hot path: gunzip, decode every line as one JSON array with the compiled mirror, then check VINs
(cached) and timestamps. Only when that fails does it fall back to line by line, and only lines the
mirror rejects are judged by pydantic, which is the schema of record and names the reason.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pydantic

from fleetota_core.domain.telemetry import TelemetryRecord
from fleetota_core.domain.vin import InvalidVINError, validate_vin
from fleetota_core.services.ingest.wire import (
    ARRAY_DECODER,
    RECORD_DECODER,
    DecodeError,
    WireRecord,
    to_wire,
)

MAX_LINE_BYTES = 16 * 1024
MAX_OBJECT_BYTES = 64 * 1024 * 1024  # decompressed; also stops gzip bombs
MAX_FUTURE_SKEW = timedelta(minutes=5)
GZIP_MAGIC = b"\x1f\x8b"
# Quarantined lines keep at most this much of the original, enough to see what was wrong.
RAW_EXCERPT_BYTES = 2048


class UnreadableObjectError(Exception):
    """The object as a whole cannot be read; ``reason`` is one of the object-level reasons."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class QuarantinedLine:
    line: int  # 1-based among the object's non-blank lines
    reason: str
    detail: str
    raw: bytes


@dataclass
class DecodedObject:
    records: list[WireRecord] = field(default_factory=list)
    quarantined: list[QuarantinedLine] = field(default_factory=list)

    @property
    def received(self) -> int:
        return len(self.records) + len(self.quarantined)


def gunzip(body: bytes, limit: int = MAX_OBJECT_BYTES) -> bytes:
    """Decompress a gzip member, refusing corrupt, truncated or oversized content."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        raw = inflater.decompress(body, limit)
    except zlib.error as exc:
        raise UnreadableObjectError("corrupt_gzip", str(exc)) from exc
    if inflater.unconsumed_tail:
        raise UnreadableObjectError("object_too_large", f"more than {limit} bytes once decompressed")
    if not inflater.eof:
        raise UnreadableObjectError("corrupt_gzip", "truncated gzip stream")
    return raw


def object_lines(key: str, body: bytes) -> list[bytes]:
    """The record lines of an object: NDJSON (gzipped or not) or one single-record ``.json``.

    Blank lines are kept here (they are cheap to drop later and rare); only the ends are stripped.
    """
    if body[:2] == GZIP_MAGIC:
        body = gunzip(body)
    elif key.endswith(".gz"):
        raise UnreadableObjectError("corrupt_gzip", "the key ends in .gz but the content is not gzip")
    elif len(body) > MAX_OBJECT_BYTES:
        raise UnreadableObjectError("object_too_large", f"more than {MAX_OBJECT_BYTES} bytes")
    body = body.strip()
    if not body:
        return []
    if key.endswith(".json"):
        # One record, which may be pretty-printed over several lines.
        return [body]
    return body.split(b"\n")


def _reason(exc: pydantic.ValidationError) -> tuple[str, str]:
    error = exc.errors(include_url=False)[0]
    kind, loc = error["type"], ".".join(str(part) for part in error["loc"])
    if kind == "json_invalid" or kind == "json_type":
        reason = "malformed_json"
    elif loc == "vin" and kind == "value_error":
        reason = "invalid_vin"
    elif kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"}:
        reason = "impossible_value"
    elif kind == "literal_error" and loc == "schema_version":
        reason = "unsupported_schema_version"
    else:
        reason = "schema_violation"
    return reason, f"{loc or 'record'}: {error['msg']}"


def _judge_line(number: int, line: bytes, cutoff: datetime) -> WireRecord | QuarantinedLine:
    if len(line) > MAX_LINE_BYTES:
        return QuarantinedLine(
            number, "line_too_large", f"{len(line)} bytes > {MAX_LINE_BYTES}", line[:RAW_EXCERPT_BYTES]
        )
    try:
        record = RECORD_DECODER.decode(line)
    except DecodeError:
        try:
            record = to_wire(TelemetryRecord.model_validate_json(line).model_dump_json().encode())
        except pydantic.ValidationError as exc:
            reason, detail = _reason(exc)
            return QuarantinedLine(number, reason, detail, line[:RAW_EXCERPT_BYTES])
    problem = _check(record, cutoff)
    if problem is not None:
        return QuarantinedLine(number, problem[0], problem[1], line[:RAW_EXCERPT_BYTES])
    return record


# VINs already found valid: a set lookup is cheaper than even a cached call on the hot path.
_VALID_VINS: set[str] = set()
_MAX_VALID_VINS = 2_000_000


def _check(record: WireRecord, cutoff: datetime) -> tuple[str, str] | None:
    """The rules the mirror cannot express: the VIN check digit and a plausible timestamp."""
    if record.vin not in _VALID_VINS:
        try:
            validate_vin(record.vin)
        except InvalidVINError as exc:
            return "invalid_vin", f"vin: {exc}"
        if len(_VALID_VINS) >= _MAX_VALID_VINS:
            _VALID_VINS.clear()
        _VALID_VINS.add(record.vin)
    if record.ts > cutoff:
        return "future_timestamp", f"ts {record.ts.isoformat()} is after {cutoff.isoformat()}"
    return None


def _fast_path(lines: list[bytes]) -> list[WireRecord] | None:
    """All lines decoded as one JSON array, or None if any line needs a closer look."""
    if max(map(len, lines)) > MAX_LINE_BYTES:
        return None
    try:
        records = ARRAY_DECODER.decode(b"[" + b",".join(lines) + b"]")
    except DecodeError:
        return None
    # A blank line fails the array; a line holding two objects would shift every later line number.
    return records if len(records) == len(lines) else None


def decode_lines(lines: list[bytes], now: datetime) -> DecodedObject:
    """Valid records and quarantined lines; a bad line never costs the good ones."""
    cutoff = now + MAX_FUTURE_SKEW
    decoded = DecodedObject()
    records = _fast_path(lines) if lines else None
    if records is None:
        number = 0
        for line in lines:
            if not line.strip():
                continue
            number += 1
            outcome = _judge_line(number, line, cutoff)
            if isinstance(outcome, QuarantinedLine):
                decoded.quarantined.append(outcome)
            else:
                decoded.records.append(outcome)
        return decoded
    good = decoded.records
    for number, record in enumerate(records, start=1):
        if record.vin in _VALID_VINS and record.ts <= cutoff:
            good.append(record)  # the common case, inlined
            continue
        problem = _check(record, cutoff)
        if problem is None:
            good.append(record)
        else:
            raw = lines[number - 1][:RAW_EXCERPT_BYTES]
            decoded.quarantined.append(QuarantinedLine(number, problem[0], problem[1], raw))
    return decoded


def decode_object(key: str, body: bytes, now: datetime) -> DecodedObject:
    """Decode one S3 object; raises :class:`UnreadableObjectError` when the object itself is bad."""
    return decode_lines(object_lines(key, body), now)
