"""The fleet snapshot: every vehicle's latest state as gzip NDJSON, one line per VIN (the fleet read model).

Written on the schedule by ``publish_fleet_health`` at
``s3://<telemetry bucket>/snapshots/fleet/latest.ndjson.gz``: the previous snapshot plus the deltas
the telemetry processor wrote since (``snapshots/fleet/deltas/``, one small object of the same format
per invocation, holding the vehicle states it wrote), with a full vehicles-table scan only to start
and every 30 minutes to heal. Plain Python (msgspec's JSON codec) reads and writes it, so no Lambda
package carries pandas or pyarrow (issue #16); the dashboard reads it into a DataFrame with
pyarrow's JSON reader in ``fleetota_core.views.fleet_snapshot``.

The document (``schema_version`` 1), gzip-compressed::

    {"format": "fleetota.fleet-snapshot", "schema_version": 1, "as_of": ISO 8601,
     "high_water": delta key, "rebuilt_at": ISO 8601, "sweep": {...}, "columns": ["vin", "make", ...]}
    {"vin": "<VIN>", "make": ..., ...}
    ...

The first line is the header (``sweep``: the healing sweep's saved cursor, see
``fleetota_core/domain/fleet_sweep.py``; absent in older snapshots); each further line is one
vehicle, keyed by its ``vin`` (unique in a
document), so merging a delta is a keyed replace. Columns: ``SNAPSHOT_COLUMNS``; ``last_ts`` is UTC
ISO 8601, a missing number is null, ``online`` means reported online *and* heard from within 5 minutes.
"""

from __future__ import annotations

import gzip
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from botocore.exceptions import BotoCoreError, ClientError

from fleetota_core.adapters.aws_errors import error_code, translate
from fleetota_core.adapters.vehicle_state import item_values
from fleetota_core.domain.enrichment import OFFLINE_AFTER
from fleetota_core.domain.vehicle_health import ATTRIBUTES as HEALTH_ATTRIBUTES
from fleetota_core.errors import PermanentError

if TYPE_CHECKING:
    from collections.abc import Iterable


FORMAT = "fleetota.fleet-snapshot"
SCHEMA_VERSION = 1
SNAPSHOT_KEY = "snapshots/fleet/latest.ndjson.gz"
# Written by FleetOTA before issue #16; never read: the update manager rebuilds the snapshot above.
LEGACY_SNAPSHOT_KEY = "snapshots/fleet/latest.parquet"
DELTA_PREFIX = "snapshots/fleet/deltas/"
DELTA_SUFFIX = ".ndjson.gz"
# A delta's vehicle lines are in this many gzip members by VIN hash (``encode_delta``).
DELTA_PARTS = 16
# The decompression bound: about 630 bytes a vehicle with the health counters, so room for 1.5M.
MAX_DOCUMENT_BYTES = 1024 * 1024 * 1024
SNAPSHOT_COLUMNS = (
    "vin",
    "make",
    "model",
    "model_year",
    "hw_rev",
    "firmware_version",
    "region",
    "metro",
    "last_ts",
    "lat",
    "lon",
    "speed_kph",
    "soc_pct",
    "battery_category",
    "charging",
    "drive_state",
    "network",
    "signal_dbm",
    "odometer_km",
    "online",
    "needs_update",
    "newest_compatible",
    "ota_status",
    "last_ts_ms",
    "last_seq",
    # The health gate's counters (domain/vehicle_health.py): fresh here, since the vehicles table
    # takes material changes only and parked drain is not one.
    *HEALTH_ATTRIBUTES,
)
ROW_COLUMNS = SNAPSHOT_COLUMNS[1:]  # a vehicle's values besides its VIN, in this order
_ROW_KEYS = dict.fromkeys(ROW_COLUMNS).keys()
# msgspec, not the json module: it is plain JSON either way, but at 100,000 vehicles msgspec reads and
# writes the lines in about 1 s instead of about 7 (it is already the ingest hot path's parser).
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()

Row = dict[str, Any]


class SnapshotFormatError(PermanentError):
    """An object under the snapshot's keys is not a fleet snapshot this version can read."""


@dataclass
class SnapshotDocument:
    """A checked snapshot or delta header, and its vehicle lines (parsed only when asked for)."""

    columns: list[str]
    lines: bytes  # NDJSON, one vehicle object per line
    as_of: str = ""
    high_water: str = ""
    rebuilt_at: str = ""
    sweep: dict[str, Any] | None = None

    def rows(self) -> dict[str, Row]:
        """VIN -> {column: value} with every ``ROW_COLUMNS`` name; SnapshotFormatError for a bad line.

        ``online`` is as of ``as_of`` (the writer's time): the merge passes lines through unchanged,
        so a reader judges it, as :func:`refresh_online_at` does."""
        return rows_from_lines(self.lines, fresh_after_ms(self.as_of))


_BLANK = dict.fromkeys(ROW_COLUMNS)


def _row(line: Any) -> tuple[str, Row]:
    if not isinstance(line, dict) or not isinstance(line.get("vin"), str):
        raise SnapshotFormatError("a vehicle line is not an object with a 'vin'")
    vin = line.pop("vin")
    # A line as this version writes it is used as it is (the common case, 100,000 times a tick).
    return vin, line if line.keys() == _BLANK.keys() else {**_BLANK, **line}


def rows_from_lines(lines: bytes, fresh_after: float | None) -> dict[str, Row]:
    """NDJSON vehicle lines as VIN -> row, decoded in one call; ``online`` judged at ``fresh_after``."""
    try:
        parsed = _DECODER.decode_lines(lines)
    except msgspec.DecodeError as exc:
        raise SnapshotFormatError(f"a vehicle line is not JSON: {exc}") from exc
    rows: dict[str, Row] = {}
    for line in parsed:
        vin, row = _row(line)
        rows[vin] = row
    if fresh_after is not None:
        refresh_online_at(rows.values(), fresh_after)
    return rows


def row_from_line(line: bytes, fresh_after: float | None) -> tuple[str, Row]:
    """One vehicle line as (VIN, row), ``online`` judged at ``fresh_after`` (epoch ms) when given."""
    try:
        vin, row = _row(_DECODER.decode(line))
    except msgspec.DecodeError as exc:
        raise SnapshotFormatError(f"a vehicle line is not JSON: {exc}") from exc
    if fresh_after is not None:
        refresh_online_at((row,), fresh_after)
    return vin, row


def fresh_after_ms(as_of: str) -> float | None:
    """Epoch ms of the oldest reading still online at ``as_of`` (None: no usable time)."""
    try:
        at = datetime.fromisoformat(as_of) if as_of else None
    except ValueError:
        return None
    if at is None or at.tzinfo is None:
        return None
    return (at - OFFLINE_AFTER).timestamp() * 1000


def refresh_online_at(rows: Iterable[Row], fresh_after: float) -> None:
    """``online``: a network was reported and the reading is no older than ``fresh_after`` (epoch ms)."""
    for row in rows:
        ts = row.get("last_ts_ms")
        row["online"] = row.get("network") not in (None, "NONE") and type(ts) is int and ts >= fresh_after


def _line(vin: str, row: Row) -> dict[str, Any]:
    """A vehicle line's object: ``vin``, then ``ROW_COLUMNS`` in order (a row as this version writes
    it is used as it is)."""
    return {"vin": vin, **(row if row.keys() == _ROW_KEYS else {c: row.get(c) for c in ROW_COLUMNS})}


def encode(
    rows: dict[str, Row],
    as_of: str,
    high_water: str = "",
    rebuilt_at: str = "",
    sweep: dict[str, Any] | None = None,
) -> bytes:
    header: dict[str, Any] = {
        "as_of": as_of,
        "high_water": high_water,
        "rebuilt_at": rebuilt_at,
    }
    if sweep is not None:
        header["sweep"] = sweep
    lines = [_line(vin, row) for vin, row in rows.items()]
    # msgspec writes a float NaN or infinity as null, so the document stays valid JSON.
    return encode_document(_ENCODER.encode_lines(lines), header)


def encode_document(lines: bytes, header: dict[str, Any]) -> bytes:
    """A document of ``header`` (given the format, version and columns) and NDJSON vehicle ``lines``."""
    header = {"format": FORMAT, "schema_version": SCHEMA_VERSION, **header, "columns": list(SNAPSHOT_COLUMNS)}
    return gzip.compress(_ENCODER.encode(header) + b"\n" + lines, compresslevel=3, mtime=0)


def encode_blocks(blocks: list[bytes], header: dict[str, Any]) -> bytes:
    """A document whose vehicle lines are ``blocks``, each its own gzip member after the header's.

    Still one gzip stream to any reader (members concatenate); the header's ``blocks`` holds each
    block's end offset after the header member, so a reader can decompress the one block that holds a
    VIN (``fleet_shards.block_of``) instead of the whole shard.
    """
    members = [gzip.compress(block, compresslevel=3, mtime=0) for block in blocks]
    ends, end = [], 0
    for member in members:
        end += len(member)
        ends.append(end)
    header = {"format": FORMAT, "schema_version": SCHEMA_VERSION, **header, "blocks": ends}
    header["columns"] = list(SNAPSHOT_COLUMNS)
    first = gzip.compress(_ENCODER.encode(header) + b"\n", compresslevel=3, mtime=0)
    return first + b"".join(members)


_GUNZIP_FEED = 64 * 1024  # compressed bytes a call: a shard's blocks are ~4 KB members


def _gunzip(body: bytes, limit: int) -> bytes:
    """Every gzip member of ``body``, decompressed; :class:`SnapshotFormatError` past ``limit`` bytes.

    zlib in C, a member after another, not ``gzip.GzipFile``: its reads, copies and CRC in Python cost
    about as much again as inflating, at 1,000,000 vehicles several seconds of a snapshot tick.
    """
    parts: list[bytes] = []
    size, at, view = 0, 0, memoryview(body)
    try:
        while at < len(body) or not parts:
            inflate = zlib.decompressobj(wbits=31)
            while not inflate.eof:
                feed = view[at : at + _GUNZIP_FEED]
                if not feed:
                    raise SnapshotFormatError("not gzip: the stream ends before its end marker")
                at += len(feed)
                part = inflate.decompress(feed, limit + 1 - size)
                size += len(part)
                if size > limit:
                    raise SnapshotFormatError(f"more than {limit:,} bytes once decompressed")
                parts.append(part)
            at -= len(inflate.unused_data)
    except zlib.error as exc:
        raise SnapshotFormatError(f"not gzip: {exc}") from exc
    return b"".join(parts)


def decode(body: bytes, limit: int = MAX_DOCUMENT_BYTES) -> SnapshotDocument:
    """Check one snapshot or delta's header; :class:`SnapshotFormatError` says why it cannot be used."""
    raw = _gunzip(body, limit)
    first, _, lines = raw.partition(b"\n")
    header = decode_header(first)
    sweep = header.get("sweep")
    return SnapshotDocument(
        header["columns"],
        lines,
        str(header.get("as_of") or ""),
        str(header.get("high_water") or ""),
        str(header.get("rebuilt_at") or ""),
        sweep if isinstance(sweep, dict) else None,
    )


def check_format(header: Any, name: str, schema_version: int) -> None:
    """Raise :class:`SnapshotFormatError` unless ``header`` is a ``name`` object of ``schema_version``."""
    if not isinstance(header, dict) or header.get("format") != name:
        raise SnapshotFormatError(f"not a {name} object")
    if header.get("schema_version") != schema_version:
        raise SnapshotFormatError(
            f"{name} schema_version {header.get('schema_version')!r}; this version reads {schema_version}"
        )


def decode_header(first: bytes) -> dict[str, Any]:
    """A document's checked header line; :class:`SnapshotFormatError` says why it cannot be used."""
    try:
        header = _DECODER.decode(first)
    except msgspec.DecodeError as exc:
        raise SnapshotFormatError(f"the header line is not JSON: {exc}") from exc
    check_format(header, FORMAT, SCHEMA_VERSION)
    columns = header.get("columns")
    if not isinstance(columns, list) or "vin" not in columns or not all(isinstance(c, str) for c in columns):
        raise SnapshotFormatError("'columns' is not a list of names with 'vin'")
    return header


def snapshot_projection(table: str) -> dict[str, Any]:
    """Scan arguments that read only the snapshot's columns of a vehicles-table item."""
    names = {f"#v{i}": name for i, name in enumerate(SNAPSHOT_COLUMNS)}
    return {"TableName": table, "ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}


def scan_vehicles(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every vehicle item as plain values, projected to what the snapshot needs (the whole table in
    one call: only before the first snapshot and for ``fleet --live``; the update manager sweeps it
    in bounded segments, ``adapters/vehicle_segments.py``)."""
    kwargs = snapshot_projection(table)
    items: list[dict[str, Any]] = []
    try:
        while True:
            page = dynamodb.scan(**kwargs)
            items.extend(item_values(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"scanning {table}") from exc


def _put(s3: Any, bucket: str, key: str, body: bytes) -> str:
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/gzip")
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"writing {key} to {bucket}") from exc
    return key


def write_fleet_snapshot(
    s3: Any,
    bucket: str,
    rows: dict[str, Row],
    as_of: datetime,
    high_water: str,
    rebuilt_at: datetime | None,
    sweep: dict[str, Any] | None = None,
) -> str:
    rebuilt = rebuilt_at.isoformat() if rebuilt_at else ""
    return _put(s3, bucket, SNAPSHOT_KEY, encode(rows, as_of.isoformat(), high_water, rebuilt, sweep))


def delta_key(at: datetime) -> str:
    """Deltas sort by the time they were written (fixed-width epoch ms), then by a random suffix."""
    return f"{DELTA_PREFIX}{int(at.timestamp() * 1000):013d}-{uuid.uuid4().hex[:12]}{DELTA_SUFFIX}"


def time_bound_key(at: datetime) -> str:
    """A key that sorts after every delta written before ``at`` and before every later one."""
    return f"{DELTA_PREFIX}{int(at.timestamp() * 1000):013d}."


def write_delta(s3: Any, bucket: str, rows: dict[str, Row], at: datetime) -> str:
    """The vehicle states one processor invocation wrote, for the next snapshot to merge."""
    return _put(s3, bucket, delta_key(at), encode_delta(rows, at.isoformat()))


def part_of(vin: bytes, parts: int) -> int:
    """The part of ``parts`` (a power of two) that holds ``vin``: the low bits of its CRC-32, as a
    shard's number is (``fleet_shards.shard_of``)."""
    return zlib.crc32(vin) & (parts - 1)


def encode_delta(rows: dict[str, Row], as_of: str) -> bytes:
    """A delta document of ``rows`` in ``DELTA_PARTS`` gzip members by VIN hash, so a merge worker
    inflates only its part (``fleet_delta_parts.part_lines``); one gzip stream to any other reader."""
    members: list[list[dict[str, Any]]] = [[] for _ in range(DELTA_PARTS)]
    for vin, row in rows.items():
        members[part_of(vin.encode(), DELTA_PARTS)].append(_line(vin, row))
    blocks = [_ENCODER.encode_lines(lines) for lines in members]
    return encode_blocks(blocks, {"as_of": as_of, "parts": DELTA_PARTS})


def list_deltas(
    s3: Any, bucket: str, after: str, before: str, suffix: str | None = DELTA_SUFFIX
) -> list[str]:
    """Delta keys strictly after ``after`` and before ``before``, oldest first.

    Only keys ending in ``suffix`` (None: every key), so the deltas of an older version (Parquet) are
    skipped by the merge and only removed by the clean-up.
    """
    keys: list[str] = []
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": DELTA_PREFIX, "StartAfter": after}
    try:
        while True:
            page = s3.list_objects_v2(**kwargs)
            for obj in page.get("Contents", []):
                if obj["Key"] >= before:
                    return keys
                if suffix is None or obj["Key"].endswith(suffix):
                    keys.append(obj["Key"])
            if not page.get("IsTruncated"):
                return keys
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"listing fleet snapshot deltas in {bucket}") from exc


def delete_deltas_before(s3: Any, bucket: str, before: str) -> int:
    """Delete deltas older than ``before`` (already merged, or of an older format); returns how many."""
    keys = list_deltas(s3, bucket, after=DELTA_PREFIX, before=before, suffix=None)
    try:
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": key} for key in keys[start : start + 1000]]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"deleting merged fleet snapshot deltas in {bucket}") from exc
    return len(keys)


def get_body(s3: Any, bucket: str, key: str) -> bytes | None:
    """An object's bytes, or None if it does not exist."""
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        if error_code(exc) in {"NoSuchKey", "404"}:
            return None
        raise translate(exc, f"reading {key}") from exc
    except BotoCoreError as exc:
        raise translate(exc, f"reading {key}") from exc


def read_document(s3: Any, bucket: str, key: str) -> SnapshotDocument | None:
    """A snapshot or delta, or None if the object does not exist; :class:`SnapshotFormatError` if unusable."""
    body = get_body(s3, bucket, key)
    if body is None:
        return None
    try:
        return decode(body)
    except SnapshotFormatError as exc:
        raise SnapshotFormatError(f"s3://{bucket}/{key} is not a usable fleet snapshot: {exc}") from exc
