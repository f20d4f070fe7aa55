"""The sharded fleet snapshot as VIN -> row: a shard fetched when a VIN of it is first asked for.

:class:`ShardedRows` keeps a shard as fetched (compressed) and decompresses the one block that holds a
VIN, so the update manager's eligibility looks up the vehicles of a page without holding the fleet's
lines (at 1,000,000 vehicles the fleet as rows is gigabytes); iterating reads a shard at a time
(targeting, the change feed). :class:`SnapshotLastSeen` hands it to the campaign slice.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections import OrderedDict
from collections.abc import ItemsView, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.fleet_shards import SnapshotIndex, block_of, get_body, line_vin, shard_of
from fleetota_core.adapters.fleet_snapshot import (
    SnapshotFormatError,
    decode,
    decode_header,
    fresh_after_ms,
    row_from_line,
    rows_from_lines,
)
from fleetota_core.adapters.fleet_snapshot_reads import read_snapshot_index
from fleetota_core.errors import FleetOTAError

if TYPE_CHECKING:
    from collections.abc import Callable

    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.fleet_snapshot import Row
    from fleetota_core.adapters.resources import Resources

logger = logging.getLogger(__name__)
CACHED_SHARDS = 8  # shards kept as fetched (compressed, about 1 MB each at 16,384 vehicles)


# Bound of one block once decompressed (about 64 vehicles, 40 KB): far above, it is not a block.
MAX_BLOCK_BYTES = 16 * 1024 * 1024


class _Shard:
    """One shard as fetched: its blocks still compressed (a lookup decompresses one), or, for a
    document written without blocks (earlier versions), its lines by VIN."""

    def __init__(self, where: str, blocks: list[int], body: bytes, lines: dict[str, bytes] | None) -> None:
        self.where, self.blocks, self.body, self.lines = where, blocks, body, lines

    @classmethod
    def parse(cls, body: bytes, where: str) -> _Shard:
        inflate = zlib.decompressobj(wbits=31)
        try:
            first = inflate.decompress(body, MAX_BLOCK_BYTES)
        except zlib.error as exc:
            raise SnapshotFormatError(f"{where} is not gzip: {exc}") from exc
        ends = decode_header(first.partition(b"\n")[0]).get("blocks") if inflate.eof else None
        if isinstance(ends, list) and ends and all(type(e) is int for e in ends):
            return cls(where, ends, inflate.unused_data, None)
        lines = {}
        for line in decode(body).lines.split(b"\n"):
            if line:
                vin = line_vin(line)
                lines[vin.decode() if vin is not None else row_from_line(line, None)[0]] = line
        return cls(where, [], b"", lines)

    def _block(self, block: int) -> bytes:
        start = self.blocks[block - 1] if block else 0
        inflate = zlib.decompressobj(wbits=31)
        try:
            raw = inflate.decompress(self.body[start : self.blocks[block]], MAX_BLOCK_BYTES)
        except zlib.error as exc:
            raise SnapshotFormatError(f"{self.where}: block {block} is not gzip: {exc}") from exc
        if inflate.unconsumed_tail:
            raise SnapshotFormatError(f"{self.where}: block {block} is over {MAX_BLOCK_BYTES:,} bytes")
        return raw

    def line(self, vin: str) -> bytes | None:
        if self.lines is not None:
            return self.lines.get(vin)
        raw = self._block(block_of(vin, len(self.blocks)) if len(self.blocks) > 1 else 0)
        at = raw.find(b'{"vin":"' + vin.encode() + b'"')
        if at < 0 or (at and raw[at - 1] != 10):
            return None
        end = raw.find(b"\n", at)
        return raw[at : end if end >= 0 else len(raw)]

    def all_lines(self) -> Iterator[bytes]:
        if self.lines is not None:
            yield from self.lines.values()
            return
        for block in range(len(self.blocks)):
            yield from (line for line in self._block(block).split(b"\n") if line)

    def line_runs(self) -> Iterator[bytes]:
        """The shard's lines as NDJSON runs: a block each, or all of a document without blocks."""
        if self.lines is not None:
            yield b"\n".join(self.lines.values())
            return
        for block in range(len(self.blocks)):
            yield self._block(block)


class _ShardItems(ItemsView[str, "Row"]):
    _mapping: ShardedRows

    def __iter__(self) -> Iterator[tuple[str, Row]]:
        for rows in self._mapping.shard_rows():
            yield from rows.items()


class ShardedRows(Mapping[str, "Row"]):
    """The snapshot as VIN -> row, a shard fetched when first needed; the last ``cached`` kept.

    A shard is kept as fetched (compressed, about a quarter of its lines) and a lookup decompresses
    the one block that holds the VIN, so the update manager's eligibility can look up vehicles of
    every shard in a tick without holding the fleet's lines. Iterating reads the shards one after
    another (targeting). ``online`` is judged at the index's ``as_of``.
    """

    def __init__(self, s3: Any, bucket: str, index: SnapshotIndex, cached: int = CACHED_SHARDS) -> None:
        self._s3, self._bucket, self.index = s3, bucket, index
        self._keys = index.keys()
        self._cached = max(1, cached)
        self._shards: OrderedDict[int, _Shard] = OrderedDict()
        self._fresh_after = fresh_after_ms(index.as_of)
        self.fetched = 0  # shard reads, for the benchmark

    def _shard(self, shard: int) -> _Shard:
        found = self._shards.get(shard)
        if found is not None:
            self._shards.move_to_end(shard)
            return found
        self.fetched += 1
        where = f"s3://{self._bucket}/{self._keys[shard]}"
        try:
            body = get_body(self._s3, self._bucket, self._keys[shard])
            if body is None:
                raise SnapshotFormatError(f"{where} is named by the snapshot index but missing")
            found = _Shard.parse(body, where)
        except SnapshotFormatError as exc:
            # Its vehicles' stored states stand (eligibility), as for a vehicle the snapshot lacks.
            logger.warning("%s; read as empty", exc)
            found = _Shard(where, [], b"", {})
        self._shards[shard] = found
        if len(self._shards) > self._cached:
            self._shards.popitem(last=False)
        return found

    def _of(self, vin: str) -> _Shard:
        return self._shard(shard_of(vin, len(self._keys)) if len(self._keys) > 1 else 0)

    def __getitem__(self, vin: str) -> Row:
        line = self._of(vin).line(vin)
        if line is None:
            raise KeyError(vin)
        return row_from_line(line, self._fresh_after)[1]

    def __contains__(self, vin: object) -> bool:
        return isinstance(vin, str) and self._of(vin).line(vin) is not None

    def __iter__(self) -> Iterator[str]:
        for shard in range(len(self._keys)):
            for line in list(self._shard(shard).all_lines()):
                vin = line_vin(line)
                yield vin.decode() if vin is not None else row_from_line(line, None)[0]

    def items(self) -> ItemsView[str, Row]:
        """Every (VIN, row), a shard decoded at a time (not a block per VIN)."""
        return _ShardItems(self)

    def __len__(self) -> int:
        return self.index.vehicles

    def lookup(self, vins: list[str]) -> dict[str, Row]:
        """The rows of ``vins`` that the snapshot holds, grouped by shard (each shard read once)."""
        shards = len(self._keys)
        out: dict[str, Row] = {}
        for vin in sorted(vins, key=lambda v: shard_of(v, shards)):
            line = self._of(vin).line(vin)
            if line is not None:
                out[vin] = row_from_line(line, self._fresh_after)[1]
        return out

    def rows_of(self, shard: int) -> dict[str, Row]:
        """Every row of one shard (its lines decoded a block at a time, not one by one)."""
        rows: dict[str, Row] = {}
        for lines in self._shard(shard).line_runs():
            rows.update(rows_from_lines(lines, self._fresh_after))
        return rows

    def shard_rows(self) -> Iterator[dict[str, Row]]:
        """The fleet, one shard's rows at a time."""
        for shard in range(len(self._keys)):
            yield self.rows_of(shard)


def fleet_rows_source(s3: Any, bucket: str) -> ShardedRows | None:
    """The latest snapshot as :class:`ShardedRows`, or None before the first (or an unusable) one."""
    index = read_snapshot_index(s3, bucket)
    return ShardedRows(s3, bucket, index) if index is not None else None


class SnapshotLastSeen:
    """The fleet snapshot as a "last seen" source, its index read again when older than ``max_age_s``.

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
        self._rows: ShardedRows | None = None
        self._read_at: float | None = None

    def __call__(self) -> Mapping[str, Row]:
        return self.fleet() or {}

    def fleet(self) -> ShardedRows | None:
        """The snapshot's rows, or None when there is no usable snapshot (before the first tick)."""
        now = self._clock()
        if self._read_at is None or now - self._read_at > self._max_age_s:
            try:
                self._rows = fleet_rows_source(self._clients.s3, self._resources.telemetry_bucket)
            except FleetOTAError as exc:
                logger.warning("fleet snapshot unreadable, last seen from the vehicles table only: %s", exc)
                self._rows = None
            self._read_at = now
        return self._rows
