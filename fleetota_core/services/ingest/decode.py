"""Turn the bytes of one telemetry object into valid records and quarantined lines, each with a reason.

Hot path: gunzip, decode every line as one JSON array with the compiled mirror, then check VINs
(cached) and timestamps. Only when that fails does it fall back to line by line, and only lines the
mirror rejects are judged by pydantic, which is the schema of record and names the reason.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pydantic

from fleetota_core.domain.bounds import MAX_FUTURE_SKEW, MAX_TELEMETRY_AGE, RAW_RETENTION_DAYS
from fleetota_core.domain.telemetry import TelemetryRecord
from fleetota_core.domain.vin import InvalidVINError, validate_vin
from fleetota_core.services.ingest.wire import (
    ARRAY_DECODER,
    RECORD_DECODER,
    DecodeError,
    WireRecord,
    to_wire,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

MAX_LINE_BYTES = 16 * 1024
# Bounds on the work one object may cost, checked before its lines are judged, so a small hostile
# object is stopped early (docs/telemetry.md, "Limits"). The simulator's objects hold 1,000 records (~0.4 MB).
MAX_OBJECT_BYTES = 64 * 1024 * 1024  # decompressed; also stops gzip bombs
MAX_OBJECT_LINES = 100_000
MAX_DECODE_SECONDS = 5.0
INFLATE_CHUNK_BYTES = 4 * 1024 * 1024
# Lines judged between two looks at the clock on the slow (line by line) path.
_CLOCK_EVERY_LINES = 1024
GZIP_MAGIC = b"\x1f\x8b"
# Quarantined lines keep at most this much of the original, enough to see what was wrong; past the
# first MAX_RAW_EXCERPTS bad lines of an object only line number, reason and detail are kept.
RAW_EXCERPT_BYTES = 2048
MAX_RAW_EXCERPTS = 1000


class UnreadableObjectError(Exception):
    """The object as a whole cannot be read; ``reason`` is one of the object-level reasons.

    ``counts`` says how far reading got (compressed and decompressed bytes, lines, gzip members), so
    the quarantine record points at the object without copying it.
    """

    def __init__(self, reason: str, detail: str, counts: dict[str, int] | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.counts = counts or {}


@dataclass(frozen=True)
class DecodeLimits:
    """How much one object may cost: decompressed bytes, lines and seconds of decoding."""

    max_bytes: int = MAX_OBJECT_BYTES
    max_lines: int = MAX_OBJECT_LINES
    max_seconds: float = MAX_DECODE_SECONDS
    clock: Callable[[], float] = time.monotonic

    def deadline(self) -> float:
        return self.clock() + self.max_seconds


DEFAULT_LIMITS = DecodeLimits()


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
    gzip_members: int = 0

    @property
    def received(self) -> int:
        return len(self.records) + len(self.quarantined)


def gunzip(body: bytes, limits: DecodeLimits = DEFAULT_LIMITS, deadline: float | None = None) -> bytes:
    """Decompress every gzip member of ``body``, refusing corrupt, truncated or oversized content."""
    return inflate(body, limits, deadline)[0]


def inflate(
    body: bytes, limits: DecodeLimits = DEFAULT_LIMITS, deadline: float | None = None
) -> tuple[bytes, int]:
    """Every gzip member of ``body`` decompressed, and how many members there were.

    Inflates at most INFLATE_CHUNK_BYTES per zlib call (an object as the simulator writes it takes
    one) and never past the byte budget, checking the bounds after each call, so a bomb stops at the
    byte bound without a larger buffer. Raises :class:`UnreadableObjectError` with the counts reached.
    """
    deadline = limits.deadline() if deadline is None else deadline
    parts: list[bytes] = []
    size = members = 0
    data = body

    def unreadable(reason: str, detail: str) -> UnreadableObjectError:
        counts = {"compressed_bytes": len(body), "decompressed_bytes": size, "gzip_members": members}
        return UnreadableObjectError(reason, detail, counts)

    while True:
        inflater = zlib.decompressobj(wbits=31)
        while not inflater.eof:
            try:
                part = inflater.decompress(data, min(INFLATE_CHUNK_BYTES, limits.max_bytes - size + 1))
            except zlib.error as exc:
                raise unreadable("corrupt_gzip", f"member {members + 1}: {exc}") from exc
            data = inflater.unconsumed_tail
            parts.append(part)
            size += len(part)
            if size > limits.max_bytes:
                raise unreadable("object_too_large", f"more than {limits.max_bytes} bytes once decompressed")
            if limits.clock() > deadline:
                raise unreadable("decode_time_exceeded", f"not decompressed within {limits.max_seconds:g} s")
            if not part and not data and not inflater.eof:
                raise unreadable("corrupt_gzip", f"member {members + 1}: truncated gzip stream")
        members += 1
        data = inflater.unused_data
        if not data.strip(b"\0"):
            # The end, or the zero padding some writers add (gzip(1) ignores it too).
            return (parts[0] if len(parts) == 1 else b"".join(parts)), members
        if data[:2] != GZIP_MAGIC:
            raise unreadable("corrupt_gzip", f"{len(data)} bytes after gzip member {members} are not gzip")


def object_lines(
    key: str, body: bytes, limits: DecodeLimits = DEFAULT_LIMITS, deadline: float | None = None
) -> tuple[list[bytes], int]:
    """The record lines of an object (NDJSON, gzipped or not, or one single-record ``.json``) and its
    number of gzip members (0 when it is not gzip).

    Blank lines are kept here (they are cheap to drop later and rare); only the ends are stripped.
    The split stops after ``max_lines`` lines, so a million tiny lines never become a million objects.
    """
    members, compressed = 0, 0
    if body[:2] == GZIP_MAGIC:
        compressed = len(body)
        body, members = inflate(body, limits, deadline)
    elif key.endswith(".gz"):
        raise UnreadableObjectError("corrupt_gzip", "the key ends in .gz but the content is not gzip")
    elif len(body) > limits.max_bytes:
        counts = {"compressed_bytes": 0, "decompressed_bytes": len(body), "gzip_members": 0}
        raise UnreadableObjectError("object_too_large", f"more than {limits.max_bytes} bytes", counts)
    size = len(body)
    body = body.strip()
    if not body:
        return [], members
    if key.endswith(".json"):
        # One record, which may be pretty-printed over several lines.
        return [body], members
    lines = body.split(b"\n", limits.max_lines)
    if len(lines) > limits.max_lines:
        # Only now count them all (one pass over at most max_bytes), for the quarantine record.
        counts = {"compressed_bytes": compressed, "decompressed_bytes": size, "gzip_members": members}
        counts["lines"] = body.count(b"\n") + 1
        raise UnreadableObjectError("too_many_lines", f"more than {limits.max_lines} lines", counts)
    return lines, members


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


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The timestamps a reading may carry: not older than the raw retention, not past the skew."""

    oldest: datetime
    newest: datetime

    @classmethod
    def at(cls, now: datetime) -> TimeWindow:
        return cls(now - MAX_TELEMETRY_AGE, now + MAX_FUTURE_SKEW)


def _judge_line(number: int, line: bytes, window: TimeWindow) -> WireRecord | QuarantinedLine:
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
    problem = _check(record, window)
    if problem is not None:
        return QuarantinedLine(number, problem[0], problem[1], line[:RAW_EXCERPT_BYTES])
    return record


# VINs already found valid: a set lookup is cheaper than even a cached call on the hot path.
_VALID_VINS: set[str] = set()
_MAX_VALID_VINS = 2_000_000


def _check(record: WireRecord, window: TimeWindow) -> tuple[str, str] | None:
    """The rules the mirror cannot express: the VIN check digit and a plausible timestamp."""
    if record.vin not in _VALID_VINS:
        try:
            validate_vin(record.vin)
        except InvalidVINError as exc:
            return "invalid_vin", f"vin: {exc}"
        if len(_VALID_VINS) >= _MAX_VALID_VINS:
            _VALID_VINS.clear()
        _VALID_VINS.add(record.vin)
    if record.ts > window.newest:
        return "future_timestamp", (
            f"ts: {record.ts.isoformat()} is more than {MAX_FUTURE_SKEW.total_seconds():g} s ahead "
            f"(after {window.newest.isoformat()})"
        )
    if record.ts < window.oldest:
        return "expired_timestamp", (
            f"ts: {record.ts.isoformat()} is older than the raw retention of {RAW_RETENTION_DAYS} days "
            f"(before {window.oldest.isoformat()})"
        )
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


def _quarantine(decoded: DecodedObject, line: QuarantinedLine) -> None:
    if len(decoded.quarantined) >= MAX_RAW_EXCERPTS and line.raw:
        # Bounded quarantine objects: the line number still points into the source object.
        line = QuarantinedLine(line.line, line.reason, line.detail, b"")
    decoded.quarantined.append(line)


def decode_lines(
    lines: list[bytes], now: datetime, limits: DecodeLimits = DEFAULT_LIMITS, deadline: float | None = None
) -> DecodedObject:
    """Valid records and quarantined lines; a bad line never costs the good ones.

    Raises :class:`UnreadableObjectError` (``decode_time_exceeded``) if judging the lines one by
    one outlasts the object's time bound.
    """
    window = TimeWindow.at(now)
    decoded = DecodedObject()
    records = _fast_path(lines) if lines else None
    if records is None:
        deadline = limits.deadline() if deadline is None else deadline
        number = 0
        for index, line in enumerate(lines):
            if index % _CLOCK_EVERY_LINES == 0 and limits.clock() > deadline:
                counts = {"lines": len(lines), "lines_judged": index}
                raise UnreadableObjectError(
                    "decode_time_exceeded", f"not decoded within {limits.max_seconds:g} s", counts
                )
            if not line.strip():
                continue
            number += 1
            outcome = _judge_line(number, line, window)
            if isinstance(outcome, QuarantinedLine):
                _quarantine(decoded, outcome)
            else:
                decoded.records.append(outcome)
        return decoded
    good = decoded.records
    oldest, newest = window.oldest, window.newest
    for number, record in enumerate(records, start=1):
        if record.vin in _VALID_VINS and oldest <= record.ts <= newest:
            good.append(record)  # the common case, inlined
            continue
        problem = _check(record, window)
        if problem is None:
            good.append(record)
        else:
            raw = lines[number - 1][:RAW_EXCERPT_BYTES]
            _quarantine(decoded, QuarantinedLine(number, problem[0], problem[1], raw))
    return decoded


def decode_object(
    key: str, body: bytes, now: datetime, limits: DecodeLimits = DEFAULT_LIMITS
) -> DecodedObject:
    """Decode one S3 object; raises :class:`UnreadableObjectError` when the object itself is bad
    (unreadable, or over one of ``limits``: bytes, lines, seconds)."""
    deadline = limits.deadline()
    lines, members = object_lines(key, body, limits, deadline)
    decoded = decode_lines(lines, now, limits, deadline)
    decoded.gzip_members = members
    return decoded
