"""Snapshot deltas in parts by VIN hash, so a merge worker inflates only its part (issue #16).

At 1,000,000 vehicles reporting every 10 s a tick's deltas hold about six million vehicle lines, more
than one process merges within the update manager's timeout, so the merge runs as ``parts`` workers
(``services/ingest/snapshot_parts.py``), worker ``p`` owning the shards whose number has ``p`` in its
low bits. A delta is written (``fleet_snapshot.encode_delta``) as ``DELTA_PARTS`` gzip members after
its header, member ``b`` holding the vehicles whose CRC-32 has ``b`` in its low bits, the bits
``fleet_shards.shard_of`` reads too. Worker ``p`` of ``parts`` (a power of two up to ``DELTA_PARTS``)
inflates the members ``b`` with ``b mod parts == p`` and skips the rest. To every other reader the
delta is one gzip stream of the usual document (``fleet_snapshot.decode``); a delta written without
parts is read whole and filtered.

The header names the scheme (``"parts": 16`` and the members' end offsets in ``"blocks"``, as a shard's
blocks are found), so a change of ``DELTA_PARTS`` is read as "without parts", never misrouted.
"""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import msgspec

from fleetota_core.adapters.fleet_shards import line_vin
from fleetota_core.adapters.fleet_snapshot import (
    DELTA_PARTS,
    MAX_DOCUMENT_BYTES,
    SnapshotFormatError,
    decode,
    decode_header,
    get_body,
    part_of,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

# Deltas fetched at once by the merge's coordinator: each waits on S3, not on CPU.
FETCH_THREADS = 16

_ANY = msgspec.json.Decoder()


def _vin_of(line: bytes) -> bytes | None:
    vin = line_vin(line)
    if vin is not None:
        return vin
    try:
        value = _ANY.decode(line)
    except msgspec.DecodeError:
        return None
    found = value.get("vin") if isinstance(value, dict) else None
    return found.encode() if isinstance(found, str) and found else None


def part_lines(body: bytes, part: int, parts: int, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The NDJSON vehicle lines of the delta ``body`` in ``part`` of ``parts``; SnapshotFormatError if
    the delta is unusable. A line with no readable VIN goes to part 0, whose merge counts it skipped."""
    inflate = zlib.decompressobj(wbits=31)
    try:
        first = inflate.decompress(body, limit)
    except zlib.error as exc:
        raise SnapshotFormatError(f"not gzip: {exc}") from exc
    header: dict[str, Any] = decode_header(first.partition(b"\n")[0]) if inflate.eof else {}
    ends = header.get("blocks")
    if (
        header.get("parts") == DELTA_PARTS
        and DELTA_PARTS % parts == 0
        and isinstance(ends, list)
        and len(ends) == DELTA_PARTS
        and all(type(e) is int for e in ends)
    ):
        rest, pieces, size = inflate.unused_data, [], 0
        for member in range(part, DELTA_PARTS, parts):
            start = ends[member - 1] if member else 0
            if not 0 <= start <= ends[member] <= len(rest):
                raise SnapshotFormatError("a part's offsets lie outside the delta")
            if start == ends[member]:
                continue
            piece = decode_member(rest[start : ends[member]], limit - size)
            size += len(piece)
            pieces.append(piece)
        return b"".join(pieces)
    lines = decode(body, limit).lines
    if parts == 1:
        return lines
    kept = []
    for line in lines.split(b"\n"):
        if line:
            vin = _vin_of(line)
            if (part_of(vin, parts) if vin is not None else 0) == part:
                kept.append(line)
    return b"\n".join(kept) + b"\n" if kept else b""


def decode_member(member: bytes, limit: int) -> bytes:
    """One gzip member, inflated; SnapshotFormatError if it is not one or is over ``limit`` bytes."""
    inflate = zlib.decompressobj(wbits=31)
    try:
        raw = inflate.decompress(member, limit + 1)
    except zlib.error as exc:
        raise SnapshotFormatError(f"a part is not gzip: {exc}") from exc
    if len(raw) > limit or inflate.unconsumed_tail:
        raise SnapshotFormatError(f"more than {limit:,} bytes once decompressed")
    if not inflate.eof or inflate.unused_data:
        raise SnapshotFormatError("a part is not one whole gzip member")
    return raw


def _delta_file(directory: Path, index: int) -> Path:
    return directory / f"{index:07d}.gz"


def fetch_deltas(s3: Any, bucket: str, keys: list[str], directory: Path) -> int:
    """Each delta of ``keys`` once, into ``directory`` (by its index in ``keys``), for every worker of
    a merge in parts to read there: one GET a delta instead of one a part (issue #16). A delta gone
    meanwhile leaves no file. Returns the bytes written (at 1M vehicles reporting every 10 s about
    56 bytes a line, ~340 MB a tick: the update manager's ephemeral storage holds it)."""

    def fetch(at: int) -> int:
        body = get_body(s3, bucket, keys[at])
        if body is None:
            return 0
        _delta_file(directory, at).write_bytes(body)
        return len(body)

    with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
        return sum(pool.map(fetch, range(len(keys))))


def fetched_deltas(directory: Path, keys: list[str]) -> Callable[[str], bytes | None]:
    """Reads a delta of ``keys`` from what :func:`fetch_deltas` wrote, as ``get_body`` reads it from
    S3 (None: the delta was gone)."""
    at = {key: n for n, key in enumerate(keys)}

    def read(key: str) -> bytes | None:
        try:
            return _delta_file(directory, at[key]).read_bytes()
        except FileNotFoundError:
            return None

    return read
