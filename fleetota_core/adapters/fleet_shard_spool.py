"""Vehicle lines routed to their shard and held zlib-compressed until the merge reaches that shard.

At 1,000,000 vehicles a tick's deltas hold a line for every vehicle that reported (several at 10 s
reporting): kept as lines they would be the fleet in memory, so the merge keeps them per shard,
compressed (zlib level 1), and takes one shard's at a time (``fleet_shard_merge``).
"""

from __future__ import annotations

import zlib
from typing import Any

from fleetota_core.adapters.fleet_shards import shard_of

_SPOOL_FLUSH = 256 * 1024


class ShardSpool:
    """Vehicle lines routed to their shard, held zlib-compressed until that shard is merged."""

    def __init__(self, shards: int) -> None:
        self.shards = shards
        self._pending: list[list[bytes]] = [[] for _ in range(shards)]
        self._sizes = [0] * shards
        self._streams: list[Any] = [None] * shards
        self._parts: list[list[bytes]] = [[] for _ in range(shards)]
        self.lines = 0

    def add(self, vin: bytes, line: bytes) -> None:
        self.extend(shard_of(vin, self.shards) if self.shards > 1 else 0, [line])

    def extend(self, shard: int, lines: list[bytes]) -> None:
        self._pending[shard].extend(lines)
        self._sizes[shard] += sum(map(len, lines)) + len(lines)
        self.lines += len(lines)
        if self._sizes[shard] >= _SPOOL_FLUSH:
            self._flush(shard)

    def _flush(self, shard: int) -> None:
        if not self._pending[shard]:
            return
        if self._streams[shard] is None:
            self._streams[shard] = zlib.compressobj(1)
        chunk = b"\n".join(self._pending[shard]) + b"\n"
        self._parts[shard].append(self._streams[shard].compress(chunk))
        self._pending[shard], self._sizes[shard] = [], 0

    def has(self, shard: int) -> bool:
        return bool(self._pending[shard] or self._parts[shard])

    def take(self, shard: int) -> list[bytes]:
        """The shard's lines in the order they came, and forget them."""
        self._flush(shard)
        stream = self._streams[shard]
        if stream is None:
            return []
        raw = zlib.decompress(b"".join(self._parts[shard]) + stream.flush())
        self._parts[shard], self._streams[shard] = [], None
        return [line for line in raw.split(b"\n") if line]

    def compressed_bytes(self) -> int:
        return sum(len(p) for parts in self._parts for p in parts)
