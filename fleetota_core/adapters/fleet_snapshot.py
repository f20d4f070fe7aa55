"""The fleet snapshot: every vehicle's latest state as one gzip JSON object keyed by VIN (read model).

Written on the schedule by ``publish_fleet_health`` at
``s3://<telemetry bucket>/snapshots/fleet/latest.json.gz``: the previous snapshot plus the deltas the
telemetry processor wrote since (``snapshots/fleet/deltas/``, one small object of the same format per
invocation, holding the vehicle states it wrote), with a full vehicles-table scan only to start and
every 30 minutes to heal. Only the standard library reads and writes it, so no Lambda package
carries pandas or pyarrow (issue #16); the dashboard turns it into a DataFrame in
``fleetota_core.views.fleet_snapshot``.

The document (``schema_version`` 1)::

    {"format": "fleetota.fleet-snapshot", "schema_version": 1,
     "as_of": ISO 8601, "high_water": delta key, "rebuilt_at": ISO 8601,
     "columns": ["make", "model", ...],
     "vehicles": {"<VIN>": [one value per column], ...}}

Rows are keyed by VIN, so merging a delta is a keyed replace; column names are written once, so the
rows cost little more than columnar data once gzipped. Columns: ``SNAPSHOT_COLUMNS`` (vin is the key);
``last_ts`` is UTC ISO 8601, ``online`` means reported online *and* heard from within 5 minutes.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import uuid
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from fleetota_core.adapters.aws_errors import error_code, translate
from fleetota_core.adapters.vehicle_state import item_values
from fleetota_core.errors import PermanentError

if TYPE_CHECKING:
    from datetime import datetime

    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources

logger = logging.getLogger(__name__)

FORMAT = "fleetota.fleet-snapshot"
SCHEMA_VERSION = 1
SNAPSHOT_KEY = "snapshots/fleet/latest.json.gz"
# Written by FleetOTA before issue #16; never read: the update manager rebuilds the snapshot above.
LEGACY_SNAPSHOT_KEY = "snapshots/fleet/latest.parquet"
DELTA_PREFIX = "snapshots/fleet/deltas/"
DELTA_SUFFIX = ".json.gz"
# The decompression bound: about 250 bytes a vehicle, so room for 2M vehicles in a 1 GB Lambda.
MAX_DOCUMENT_BYTES = 512 * 1024 * 1024
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
)
ROW_COLUMNS = SNAPSHOT_COLUMNS[1:]  # what each VIN's array holds, in this order

Row = dict[str, Any]


class SnapshotFormatError(PermanentError):
    """An object under the snapshot's keys is not a fleet snapshot this version can read."""


@dataclass
class SnapshotDocument:
    """A decoded snapshot or delta: ``vehicles`` maps each VIN to its values in ``columns`` order."""

    columns: list[str]
    vehicles: dict[str, list[Any]]
    as_of: str = ""
    high_water: str = ""
    rebuilt_at: str = ""

    @classmethod
    def from_rows(
        cls, rows: dict[str, Row], as_of: str, high_water: str = "", rebuilt_at: str = ""
    ) -> SnapshotDocument:
        vehicles = {vin: [row.get(column) for column in ROW_COLUMNS] for vin, row in rows.items()}
        return cls(list(ROW_COLUMNS), vehicles, as_of, high_water, rebuilt_at)

    def rows(self) -> dict[str, Row]:
        """VIN -> {column: value} with every ``ROW_COLUMNS`` name (None where this document has none)."""
        blank = dict.fromkeys(ROW_COLUMNS)
        return {
            vin: {**blank, **dict(zip(self.columns, values, strict=False))}
            for vin, values in self.vehicles.items()
        }


def encode(document: SnapshotDocument) -> bytes:
    body = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "as_of": document.as_of,
        "high_water": document.high_water,
        "rebuilt_at": document.rebuilt_at,
        "columns": document.columns,
        "vehicles": document.vehicles,
    }
    # allow_nan=False: NaN is not JSON; the writer turns a missing number into null first.
    raw = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    return gzip.compress(raw, compresslevel=6, mtime=0)


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
    """Check and decode one snapshot or delta; :class:`SnapshotFormatError` says why it cannot be used."""
    try:
        doc = json.loads(_gunzip(body, limit))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise SnapshotFormatError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SnapshotFormatError(f"not a {FORMAT} document")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise SnapshotFormatError(
            f"schema_version {doc.get('schema_version')!r}; this version reads {SCHEMA_VERSION}"
        )
    columns, vehicles = doc.get("columns"), doc.get("vehicles")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise SnapshotFormatError("'columns' is not a list of names")
    if not isinstance(vehicles, dict) or not all(
        isinstance(v, list) and len(v) == len(columns) for v in vehicles.values()
    ):
        raise SnapshotFormatError("'vehicles' is not a map of VIN to one value per column")
    return SnapshotDocument(
        columns,
        vehicles,
        str(doc.get("as_of") or ""),
        str(doc.get("high_water") or ""),
        str(doc.get("rebuilt_at") or ""),
    )


def scan_vehicles(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every vehicle item as plain values, projected to what the snapshot needs."""
    names = {f"#v{i}": name for i, name in enumerate(SNAPSHOT_COLUMNS)}
    kwargs: dict[str, Any] = {
        "TableName": table,
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
    }
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
    s3: Any, bucket: str, rows: dict[str, Row], as_of: datetime, high_water: str, rebuilt_at: datetime
) -> str:
    document = SnapshotDocument.from_rows(rows, as_of.isoformat(), high_water, rebuilt_at.isoformat())
    return _put(s3, bucket, SNAPSHOT_KEY, encode(document))


def delta_key(at: datetime) -> str:
    """Deltas sort by the time they were written (fixed-width epoch ms), then by a random suffix."""
    return f"{DELTA_PREFIX}{int(at.timestamp() * 1000):013d}-{uuid.uuid4().hex[:12]}{DELTA_SUFFIX}"


def time_bound_key(at: datetime) -> str:
    """A key that sorts after every delta written before ``at`` and before every later one."""
    return f"{DELTA_PREFIX}{int(at.timestamp() * 1000):013d}."


def write_delta(s3: Any, bucket: str, rows: dict[str, Row], at: datetime) -> str:
    """The vehicle states one processor invocation wrote, for the next snapshot to merge."""
    return _put(s3, bucket, delta_key(at), encode(SnapshotDocument.from_rows(rows, at.isoformat())))


def list_deltas(
    s3: Any, bucket: str, after: str, before: str, suffix: str | None = DELTA_SUFFIX
) -> list[str]:
    """Delta keys strictly after ``after`` and before ``before``, oldest first.

    Only keys ending in ``suffix`` (None: every key), so the Parquet deltas of an older version are
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
