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
import io
import logging
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from botocore.exceptions import BotoCoreError, ClientError

from fleetota_core.adapters.aws_errors import error_code, translate
from fleetota_core.adapters.vehicle_state import item_values
from fleetota_core.domain.vehicle_health import ATTRIBUTES as HEALTH_ATTRIBUTES
from fleetota_core.errors import FleetOTAError, PermanentError

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources

logger = logging.getLogger(__name__)

FORMAT = "fleetota.fleet-snapshot"
SCHEMA_VERSION = 1
SNAPSHOT_KEY = "snapshots/fleet/latest.ndjson.gz"
# Written by FleetOTA before issue #16; never read: the update manager rebuilds the snapshot above.
LEGACY_SNAPSHOT_KEY = "snapshots/fleet/latest.parquet"
DELTA_PREFIX = "snapshots/fleet/deltas/"
DELTA_SUFFIX = ".ndjson.gz"
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
        """VIN -> {column: value} with every ``ROW_COLUMNS`` name; SnapshotFormatError for a bad line."""
        try:
            parsed = _DECODER.decode_lines(self.lines)
        except msgspec.DecodeError as exc:
            raise SnapshotFormatError(f"a vehicle line is not JSON: {exc}") from exc
        blank = dict.fromkeys(ROW_COLUMNS)
        rows: dict[str, Row] = {}
        for line in parsed:
            if not isinstance(line, dict) or not isinstance(line.get("vin"), str):
                raise SnapshotFormatError("a vehicle line is not an object with a 'vin'")
            vin = line.pop("vin")
            # A line as this version writes it is used as it is (the common case, 100,000 times a tick).
            rows[vin] = line if line.keys() == blank.keys() else {**blank, **line}
        return rows


def encode(
    rows: dict[str, Row],
    as_of: str,
    high_water: str = "",
    rebuilt_at: str = "",
    sweep: dict[str, Any] | None = None,
) -> bytes:
    header: dict[str, Any] = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "as_of": as_of,
        "high_water": high_water,
        "rebuilt_at": rebuilt_at,
    }
    if sweep is not None:
        header["sweep"] = sweep
    header["columns"] = list(SNAPSHOT_COLUMNS)
    lines = [
        {"vin": vin, **(row if row.keys() == _ROW_KEYS else {c: row.get(c) for c in ROW_COLUMNS})}
        for vin, row in rows.items()
    ]
    # msgspec writes a float NaN or infinity as null, so the document stays valid JSON.
    body = _ENCODER.encode(header) + b"\n" + _ENCODER.encode_lines(lines)
    return gzip.compress(body, compresslevel=3, mtime=0)


def _gunzip(body: bytes, limit: int) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as stream:
            raw = stream.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise SnapshotFormatError(f"not gzip: {exc}") from exc
    if len(raw) > limit:
        raise SnapshotFormatError(f"more than {limit:,} bytes once decompressed")
    return raw


def decode(body: bytes, limit: int = MAX_DOCUMENT_BYTES) -> SnapshotDocument:
    """Check one snapshot or delta's header; :class:`SnapshotFormatError` says why it cannot be used."""
    raw = _gunzip(body, limit)
    first, _, lines = raw.partition(b"\n")
    try:
        header = _DECODER.decode(first)
    except msgspec.DecodeError as exc:
        raise SnapshotFormatError(f"the header line is not JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SnapshotFormatError(f"not a {FORMAT} document")
    if header.get("schema_version") != SCHEMA_VERSION:
        raise SnapshotFormatError(
            f"schema_version {header.get('schema_version')!r}; this version reads {SCHEMA_VERSION}"
        )
    columns = header.get("columns")
    if not isinstance(columns, list) or "vin" not in columns or not all(isinstance(c, str) for c in columns):
        raise SnapshotFormatError("'columns' is not a list of names with 'vin'")
    sweep = header.get("sweep")
    return SnapshotDocument(
        columns,
        lines,
        str(header.get("as_of") or ""),
        str(header.get("high_water") or ""),
        str(header.get("rebuilt_at") or ""),
        sweep if isinstance(sweep, dict) else None,
    )


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
    return _put(s3, bucket, delta_key(at), encode(rows, at.isoformat()))


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


def read_document(s3: Any, bucket: str, key: str) -> SnapshotDocument | None:
    """A snapshot or delta, or None if the object does not exist; :class:`SnapshotFormatError` if unusable."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in {"NoSuchKey", "404"}:
            return None
        raise translate(exc, f"reading {key}") from exc
    except BotoCoreError as exc:
        raise translate(exc, f"reading {key}") from exc
    try:
        return decode(body)
    except SnapshotFormatError as exc:
        raise SnapshotFormatError(f"s3://{bucket}/{key} is not a usable fleet snapshot: {exc}") from exc


def fleet_snapshot_version(clients: ClientFactory, resources: Resources) -> str | None:
    """The latest snapshot's ETag (it changes with every rewrite), or None before the first one.

    One HEAD request: the dashboard keys its parsed fleet and every aggregate on it, so an unchanged
    snapshot is never downloaded or parsed twice (at 1,000,000 vehicles that read costs ~10 s).
    """
    bucket = resources.telemetry_bucket
    try:
        head = clients.s3.head_object(Bucket=bucket, Key=SNAPSHOT_KEY)
    except ClientError as exc:
        if error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
            return None
        raise translate(exc, f"looking for {SNAPSHOT_KEY} in {bucket}") from exc
    except BotoCoreError as exc:
        raise translate(exc, f"looking for {SNAPSHOT_KEY} in {bucket}") from exc
    return str(head.get("ETag") or head.get("LastModified") or "")


def read_fleet_snapshot(clients: ClientFactory, resources: Resources) -> SnapshotDocument | None:
    """The latest fleet snapshot, or None before the first one or if it cannot be read.

    An unreadable object (corrupt, or a newer ``schema_version``) is logged and treated as missing:
    the update manager then rebuilds the snapshot from a full table scan and overwrites it, and the
    dashboard falls back to its capped table scan until it has.
    """
    try:
        return read_document(clients.s3, resources.telemetry_bucket, SNAPSHOT_KEY)
    except SnapshotFormatError as exc:
        logger.warning("%s; rebuilding it from the vehicles table", exc)
        return None


class SnapshotLastSeen:
    """The fleet snapshot's rows as a "last seen" source, read again when older than ``max_age_s``.

    A tick reads it once; a long-lived holder (the dashboard keeps its campaign ports for the server's
    lifetime) gets the snapshot the update manager wrote since. A snapshot that cannot be read leaves
    the stored vehicle states as they are: logged, not raised, so a snapshot problem never stops a
    campaign tick (eligibility then judges by material changes).
    """

    def __init__(
        self,
        clients: ClientFactory,
        resources: Resources,
        max_age_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = clients
        self._resources = resources
        self._max_age_s = max_age_s
        self._clock = clock
        self._rows: dict[str, Row] | None = None
        self._read_at: float | None = None

    def __call__(self) -> dict[str, Row]:
        return self.fleet() or {}

    def fleet(self) -> dict[str, Row] | None:
        """The snapshot's rows, or None when there is no usable snapshot (before the first tick)."""
        now = self._clock()
        if self._read_at is None or now - self._read_at > self._max_age_s:
            try:
                document = read_fleet_snapshot(self._clients, self._resources)
                self._rows = document.rows() if document is not None else None
            except FleetOTAError as exc:
                logger.warning("fleet snapshot unreadable, last seen from the vehicles table only: %s", exc)
                self._rows = None
            self._read_at = now
        return self._rows
