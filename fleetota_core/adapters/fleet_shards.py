"""The fleet snapshot split into VIN-hash shards under a small index object (issue #16, 1M vehicles).

A single snapshot document made every tick decode, merge and re-encode the whole fleet at once: at
1,000,000 vehicles about 630 MB of vehicle lines, far over the update manager's memory. The snapshot
is now ``shards`` objects, each an ordinary snapshot document (``fleet_snapshot.encode``) holding the
vehicles whose ``crc32(VIN) mod shards`` is its number, and one index::

    snapshots/fleet/index.json            {"format": "fleetota.fleet-snapshot-index", "schema_version": 1,
                                           "as_of", "high_water", "rebuilt_at", "sweep", "columns",
                                           "shards": N, "counts": [vehicles per shard]}
    snapshots/fleet/shards/<N>-<i>.ndjson.gz   shard i of N (4-digit numbers)

``shards`` is a power of two chosen from the fleet's size (about ``SHARD_VEHICLES`` a shard) and only
ever doubles, so shard ``i`` of N splits into shards ``i`` and ``i + N`` of 2N. The index is written
last: a reader that read it finds every shard it names. A stack whose saved state holds only the
single document of earlier versions (``SNAPSHOT_KEY``) is read as one shard, and the next tick
rewrites it as shards and deletes it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import msgspec
from botocore.exceptions import BotoCoreError, ClientError

from fleetota_core.adapters.aws_errors import translate
from fleetota_core.adapters.fleet_snapshot import (
    SNAPSHOT_COLUMNS,
    SNAPSHOT_KEY,
    SnapshotFormatError,
    check_format,
    get_body,
)

INDEX_FORMAT = "fleetota.fleet-snapshot-index"
INDEX_SCHEMA_VERSION = 1
INDEX_KEY = "snapshots/fleet/index.json"
SHARD_PREFIX = "snapshots/fleet/shards/"
# About 10 MB of vehicle lines a shard (630 bytes a vehicle): what one step of the merge holds.
SHARD_VEHICLES = 16_384
MAX_SHARDS = 4096
# A lookup decompresses one block of its shard (about 40 KB of lines), not the shard.
BLOCK_VEHICLES = 64
MAX_INDEX_BYTES = 1024 * 1024
VIN_OPEN = b'{"vin":"'  # how every vehicle line this version writes begins (the VIN is 17 characters)


def shard_of(vin: str | bytes, shards: int) -> int:
    """The shard holding ``vin`` among ``shards`` (a power of two): the low bits of its CRC-32."""
    return zlib.crc32(vin.encode() if isinstance(vin, str) else vin) & (shards - 1)


def block_of(vin: str | bytes, blocks: int) -> int:
    """The block of its shard holding ``vin``: bits of its CRC-32 above any shard's."""
    return (zlib.crc32(vin.encode() if isinstance(vin, str) else vin) >> 12) % blocks


def blocks_for(vehicles: int) -> int:
    """Blocks a shard of ``vehicles`` is written in: about ``BLOCK_VEHICLES`` each, at most 256."""
    return max(1, min(256, vehicles // BLOCK_VEHICLES))


def shards_for(vehicles: int, at_least: int = 1) -> int:
    """The shard count for a fleet of ``vehicles``: a power of two, never below ``at_least``."""
    shards = max(1, at_least)
    while shards < MAX_SHARDS and vehicles > shards * SHARD_VEHICLES:
        shards *= 2
    return shards


def shard_key(shards: int, shard: int) -> str:
    return f"{SHARD_PREFIX}{shards:04d}-{shard:04d}.ndjson.gz"


def line_vin(line: bytes) -> bytes | None:
    """The VIN of one vehicle line without parsing it (None: not in this version's layout)."""
    if line.startswith(VIN_OPEN) and line[25:26] == b'"':
        return line[8:25]
    return None


@dataclass
class SnapshotIndex:
    """Where the snapshot's shards are, and the header every shard shares."""

    shards: int
    counts: list[int]
    as_of: str = ""
    high_water: str = ""
    rebuilt_at: str = ""
    sweep: dict[str, Any] | None = None
    columns: list[str] = field(default_factory=lambda: list(SNAPSHOT_COLUMNS))
    legacy: bool = False  # read from the single document of earlier versions

    @property
    def vehicles(self) -> int:
        return sum(self.counts)

    def keys(self) -> list[str]:
        return [SNAPSHOT_KEY] if self.legacy else [shard_key(self.shards, i) for i in range(self.shards)]

    def encode(self) -> bytes:
        return msgspec.json.encode(
            {
                "format": INDEX_FORMAT,
                "schema_version": INDEX_SCHEMA_VERSION,
                "as_of": self.as_of,
                "high_water": self.high_water,
                "rebuilt_at": self.rebuilt_at,
                "sweep": self.sweep,
                "columns": self.columns,
                "shards": self.shards,
                "counts": self.counts,
            }
        )


def decode_index(body: bytes) -> SnapshotIndex:
    """A checked index; :class:`SnapshotFormatError` says why it cannot be used."""
    if len(body) > MAX_INDEX_BYTES:
        raise SnapshotFormatError(f"the index is over {MAX_INDEX_BYTES:,} bytes")
    try:
        header = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise SnapshotFormatError(f"the index is not JSON: {exc}") from exc
    check_format(header, INDEX_FORMAT, INDEX_SCHEMA_VERSION)
    shards, counts, columns = header.get("shards"), header.get("counts"), header.get("columns")
    if type(shards) is not int or not 1 <= shards <= MAX_SHARDS or shards & (shards - 1):
        raise SnapshotFormatError(f"'shards' {shards!r} is not a power of two up to {MAX_SHARDS}")
    if not isinstance(counts, list) or len(counts) != shards or not all(type(c) is int for c in counts):
        raise SnapshotFormatError("'counts' is not one whole number per shard")
    if not isinstance(columns, list) or "vin" not in columns or not all(isinstance(c, str) for c in columns):
        raise SnapshotFormatError("'columns' is not a list of names with 'vin'")
    sweep = header.get("sweep")
    return SnapshotIndex(
        shards,
        counts,
        str(header.get("as_of") or ""),
        str(header.get("high_water") or ""),
        str(header.get("rebuilt_at") or ""),
        sweep if isinstance(sweep, dict) else None,
        columns,
    )


def put_body(s3: Any, bucket: str, key: str, body: bytes, content_type: str = "application/gzip") -> None:
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"writing {key} to {bucket}") from exc


def read_index(s3: Any, bucket: str) -> SnapshotIndex | None:
    """The index, or None before the first sharded snapshot; SnapshotFormatError if unusable."""
    body = get_body(s3, bucket, INDEX_KEY)
    if body is None:
        return None
    try:
        return decode_index(body)
    except SnapshotFormatError as exc:
        raise SnapshotFormatError(f"s3://{bucket}/{INDEX_KEY} is not a usable snapshot index: {exc}") from exc


def write_index(s3: Any, bucket: str, index: SnapshotIndex) -> None:
    put_body(s3, bucket, INDEX_KEY, index.encode(), "application/json")


def delete_keys(s3: Any, bucket: str, keys: list[str]) -> None:
    """Delete objects the new index no longer names (an older shard count, the single document)."""
    try:
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": key} for key in keys[start : start + 1000]]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, f"deleting retired fleet snapshot objects in {bucket}") from exc
