"""One tick's merge of the sharded fleet snapshot, a shard at a time (issue #16, 1M vehicles).

The deltas (and the sweep's rows, and the single document of earlier versions when migrating) are
read once, each vehicle line routed by its VIN's hash into a per-shard spool kept zlib-compressed;
then, shard after shard: the previous shard's lines and its spool, the newest (ts, seq) per VIN
winning (a later line wins a tie: deltas in key order, then the sweep), written back if anything
came in. Of the deltas' lines only those that can win are spooled (:meth:`ShardMerge.add_deltas`):
at 10 s reporting a tick's deltas hold about six lines a vehicle, and one of them wins. A line is
passed through as bytes: only its VIN, time, sequence and the few values fleet health counts are
decoded (a typed msgspec struct), so the tick's memory is one shard's lines plus the compressed
spool, not the fleet as Python objects. ``online`` is judged by readers at the index's ``as_of``
(``fleet_snapshot.refresh_online_at``), so a line need not be rewritten to stay true.
"""

from __future__ import annotations

import logging
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from fleetota_core.adapters.fleet_delta_parts import part_lines
from fleetota_core.adapters.fleet_line_facts import (
    FACTS,
    NO_STAMP,
    STAMPS,
    Facts,
    each_a_vin_line,
    raw_lines,
)
from fleetota_core.adapters.fleet_shard_spool import ShardSpool
from fleetota_core.adapters.fleet_shards import (
    SnapshotIndex,
    blocks_for,
    get_body,
    line_vin,
    put_body,
    shard_key,
    shard_of,
)
from fleetota_core.adapters.fleet_snapshot import (
    SnapshotFormatError,
    encode_blocks,
)
from fleetota_core.adapters.fleet_snapshot_reads import read_shard, stream_lines

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from fleetota_core.adapters.fleet_snapshot import Row

logger = logging.getLogger(__name__)
_IO_THREADS = 8
_ENCODER = msgspec.json.Encoder()
_ANY = msgspec.json.Decoder()


@dataclass
class MergeOutcome:
    index: SnapshotIndex
    written: int  # shards put
    spooled: int  # lines routed from deltas, sweep and migration
    skipped: int  # lines that are not a vehicle this version can read
    retired: list[str]  # keys the new index no longer names
    spool_bytes: int  # the compressed spool when the merge began: most of the tick's memory at scale


def row_line(vin: str, row: Row) -> bytes:
    """A normalised row (the sweep's) as the vehicle line the merge spools."""
    return _ENCODER.encode({"vin": vin, **row})


def resharding(previous: SnapshotIndex | None, shards: int) -> tuple[int, bool]:
    """The shards the merge starts from (1 without a sharded snapshot) and whether it writes
    ``shards`` of another layout (a first or legacy snapshot, or a new shard count)."""
    before = previous.shards if previous and not previous.legacy else 1
    return before, previous is None or previous.legacy or before != shards


def merged_outcome(
    previous: SnapshotIndex | None,
    counts: list[int],
    header: dict[str, Any],
    written: int,
    spooled: int,
    skipped: int,
    spool_bytes: int,
) -> MergeOutcome:
    """The outcome of a merge into ``len(counts)`` shards: the index to write under ``header`` and the
    previous keys it no longer names (all of them once the shard count changed)."""
    _, reshard = resharding(previous, len(counts))
    index = SnapshotIndex(
        len(counts),
        counts,
        header.get("as_of", ""),
        header.get("high_water", ""),
        header.get("rebuilt_at", ""),
        header.get("sweep"),
    )
    retired = [] if not reshard or previous is None else previous.keys()
    return MergeOutcome(index, written, spooled, skipped, retired, spool_bytes)


def _shard_body(best: dict[str, tuple[bytes, Facts]], header: dict[str, Any]) -> bytes:
    """A shard's winning lines, grouped into blocks by VIN (``fleet_shards.block_of``)."""
    count = blocks_for(len(best))
    blocks: list[list[bytes]] = [[] for _ in range(count)]
    crc32 = zlib.crc32
    for vin, (line, _) in best.items():  # fleet_shards.block_of, inlined: once per vehicle a tick
        blocks[(crc32(vin.encode()) >> 12) % count].append(line)
    return encode_blocks([b"\n".join(block) + b"\n" if block else b"" for block in blocks], header)


class ShardMerge:
    """One tick's merge; ``observe`` sees each shard's winning facts (fleet health)."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        previous: SnapshotIndex | None,
        shards: int,
        normalise: Callable[[dict[str, Any]], Row],
        observe: Callable[[list[Facts]], None],
        part: int = 0,
        parts: int = 1,
        read_delta: Callable[[str], bytes | None] | None = None,
    ) -> None:
        self.s3, self.bucket, self.previous = s3, bucket, previous
        # Where a delta's bytes come from: S3, or what the coordinator of a merge in parts fetched.
        self._read_delta = read_delta or (lambda key: get_body(self.s3, self.bucket, key))
        before, _ = resharding(previous, shards)
        self.shards = max(shards, before)
        # Worker ``part`` of ``parts`` (services/ingest/snapshot_parts.py) merges the shards with
        # ``part`` in the low bits of their number, from that part of each delta; it needs ``parts``
        # to divide the shard count before and after, so each old shard and its splits are its own.
        if parts & (parts - 1) or not 0 <= part < parts or before % parts or self.shards % parts:
            raise ValueError(f"part {part} of {parts} does not divide {before} and {self.shards} shards")
        self.part, self.parts = part, parts
        self.normalise, self.observe = normalise, observe
        self.spool = ShardSpool(self.shards)
        self.skipped = 0

    def _normalised(self, line: bytes) -> tuple[bytes, bytes] | None:
        """(VIN, line in this version's layout) for a line of another layout; None if unusable."""
        try:
            value = _ANY.decode(line)
        except msgspec.DecodeError:
            value = None
        if not isinstance(value, dict) or not isinstance(value.get("vin"), str) or not value["vin"]:
            self.skipped += 1
            return None
        vin = value["vin"]
        return vin.encode(), _ENCODER.encode({"vin": vin, **self.normalise(value)})

    def route(self, lines: Iterable[bytes]) -> None:
        """Spool every line (the single document of earlier versions), normalised if need be."""
        groups: dict[int, list[bytes]] = {}
        count = 0
        for line in lines:
            vin = line_vin(line)
            if vin is None:
                fixed = self._normalised(line)
                if fixed is None:
                    continue
                vin, line = fixed
            groups.setdefault(zlib.crc32(vin) & (self.spool.shards - 1), []).append(line)
            count += 1
            if count >= 65_536:
                self._spool(groups)
                count = 0
        self._spool(groups)

    def _spool(self, groups: dict[int, list[bytes]]) -> None:
        for shard, group in groups.items():
            self.spool.extend(shard, group)
        groups.clear()

    def add_deltas(self, keys: list[str]) -> None:
        """Spool the deltas' lines that can win; an unusable delta is skipped (its vehicles come back).

        The deltas are read newest key first, each from its last line, and a line is spooled only if
        its (ts, seq) is above that of every line of its VIN read before it, that is, of every later
        line. The line the merge picks of a VIN (the newest, of equals the later) is so always spooled,
        and after any other of its VIN; the merge picks among about one line a vehicle what it picked
        among all, without compressing, decompressing and decoding the lines that lose.
        """
        newest: dict[str, tuple[int, int]] = {}  # VIN -> (ts, seq) of its newest line read
        with ThreadPoolExecutor(max_workers=_IO_THREADS) as pool:
            ordered = keys[::-1]
            for start in range(0, len(ordered), _IO_THREADS):
                chunk = ordered[start : start + _IO_THREADS]
                for key, body in zip(chunk, pool.map(self._read_delta, chunk), strict=True):
                    try:
                        raw, lines = self._delta_lines(body) if body is not None else (b"", [])
                    except SnapshotFormatError as exc:
                        logger.warning("s3://%s/%s: %s; skipped", self.bucket, key, exc)
                        continue
                    self._spool_newest(raw, lines, newest)

    def _delta_lines(self, body: bytes) -> tuple[bytes, list[bytes]]:
        if self.parts == 1:
            return raw_lines(body)
        raw = part_lines(body, self.part, self.parts)
        return raw, list(filter(None, raw.split(b"\n")))

    def _spool_newest(self, raw: bytes, lines: list[bytes], newest: dict[str, tuple[int, int]]) -> None:
        """Spool those of one delta's lines (last first) newer than every line of their VIN read."""
        try:
            stamps = STAMPS.decode_lines(raw) if each_a_vin_line(raw, lines) else None
        except NO_STAMP:
            stamps = None
        if stamps is None or len(stamps) != len(lines):
            self._spool_newest_each(lines, newest)
            return
        groups: dict[int, list[bytes]] = {}
        mask = self.spool.shards - 1
        for at in range(len(lines) - 1, -1, -1):  # every line of every delta: kept lean
            stamp = stamps[at]
            order = (stamp.last_ts_ms, stamp.last_seq)
            seen = newest.get(stamp.vin)
            if seen is not None and order <= seen:
                continue
            newest[stamp.vin] = order
            line = lines[at]
            vin = line[8:25] if line[25:26] == b'"' else None
            if vin is None:  # a VIN of another length: as route() spools it
                fixed = self._normalised(line)
                if fixed is None:
                    continue
                vin, line = fixed
            groups.setdefault(zlib.crc32(vin) & mask, []).append(line)
        self._spool(groups)

    def _spool_newest_each(self, lines: list[bytes], newest: dict[str, tuple[int, int]]) -> None:
        """:meth:`_spool_newest` a line at a time, for a delta one call cannot decode (another
        writer's layout, a bad line): each line's (ts, seq) as the merge will read it."""
        groups: dict[int, list[bytes]] = {}
        mask = self.spool.shards - 1
        for line in reversed(lines):
            vin = line_vin(line)
            if vin is None:
                fixed = self._normalised(line)
                if fixed is None:
                    continue
                vin, line = fixed
            try:
                stamp = STAMPS.decode(line)
                key, order = stamp.vin, (stamp.last_ts_ms, stamp.last_seq)
            except NO_STAMP:
                kept, facts = self._facts([line])
                if not kept:
                    continue
                line, key, order = kept[0], facts[0].vin, (facts[0].last_ts_ms, facts[0].last_seq)
            seen = newest.get(key)
            if seen is None or order > seen:
                newest[key] = order
                groups.setdefault(zlib.crc32(vin) & mask, []).append(line)
        self._spool(groups)

    def add_rows(self, rows: Iterable[tuple[str, Row]]) -> None:
        """Route rows already normalised (the sweep's)."""
        for vin, row in rows:
            self.spool.add(vin.encode(), row_line(vin, row))

    def _facts(self, lines: list[bytes]) -> tuple[list[bytes], list[Facts]]:
        """Each line's facts (one C call for a shard); a line of another layout normalised first."""
        if not lines:
            return [], []
        joined = b"\n".join(lines)
        try:
            facts = FACTS.decode_lines(joined) if each_a_vin_line(joined, lines) else []
        except (msgspec.ValidationError, msgspec.DecodeError):
            facts = []
        if len(facts) == len(lines):
            return lines, facts
        facts, kept = [], []
        for line in lines:
            try:
                fact = FACTS.decode(line)
            except (msgspec.ValidationError, msgspec.DecodeError):
                fixed = self._normalised(line)
                if fixed is None:
                    continue
                line, fact = fixed[1], FACTS.decode(fixed[1])
            facts.append(fact)
            kept.append(line)
        return kept, facts

    def _winners(self, previous: list[bytes], incoming: list[bytes]) -> dict[str, tuple[bytes, Facts]]:
        """Per VIN the newest (ts, seq); of equals the later line (the previous shard's come first)."""
        lines, facts = self._facts(previous)
        best = {fact.vin: (line, fact) for line, fact in zip(lines, facts, strict=True)}
        lines, facts = self._facts(incoming)
        for line, fact in zip(lines, facts, strict=True):
            current = best.get(fact.vin)
            if current is None or (fact.last_ts_ms, fact.last_seq) >= (
                current[1].last_ts_ms,
                current[1].last_seq,
            ):
                best[fact.vin] = (line, fact)
        return best

    def _previous_lines(self, old: int) -> list[bytes]:
        if self.previous is None or self.previous.legacy:
            return []
        try:
            document = read_shard(self.s3, self.bucket, self.previous.keys()[old])
        except SnapshotFormatError as exc:
            # Its vehicles come back with their next reading and the next sweep; the tick goes on.
            logger.warning("%s; the shard is rebuilt from the deltas and the sweep", exc)
            return []
        return [line for line in document.lines.split(b"\n") if line]

    def migrate_legacy(self) -> None:
        """Route the single document of earlier versions, streamed, as the oldest lines."""
        if self.previous is None or not self.previous.legacy:
            return
        (key,) = self.previous.keys()
        obj = self.s3.get_object(Bucket=self.bucket, Key=key)
        self.route(stream_lines(obj["Body"]))

    def write(self, header: dict[str, Any]) -> MergeOutcome:
        """Merge and put every shard; the index to write (the caller writes it, last)."""
        spool_bytes = self.spool.compressed_bytes()
        before, reshard = resharding(self.previous, self.shards)
        counts = [0] * self.shards
        written = 0
        olds = range(self.part, before, self.parts)  # this worker's (all of them unless in parts)
        with ThreadPoolExecutor(max_workers=2) as pool:
            ahead = pool.submit(self._previous_lines, olds[0])
            puts = []
            for at, old in enumerate(olds):
                lines = ahead.result()
                if at + 1 < len(olds):
                    ahead = pool.submit(self._previous_lines, olds[at + 1])
                targets = list(range(old, self.shards, before))
                split: dict[int, list[bytes]] = {t: [] for t in targets}
                if len(targets) == 1:
                    split[old] = lines
                else:
                    for line in lines:
                        vin = line_vin(line)
                        split[shard_of(vin, self.shards) if vin is not None else old].append(line)
                del lines
                for target in targets:
                    changed = reshard or self.spool.has(target)
                    best = self._winners(split.pop(target), self.spool.take(target))
                    counts[target] = len(best)
                    self.observe([fact for _, fact in best.values()])
                    if changed:
                        body = _shard_body(best, header)
                        puts.append(
                            pool.submit(put_body, self.s3, self.bucket, shard_key(self.shards, target), body)
                        )
                        written += 1
                    del best
                    while len(puts) > 2:  # at most two shards' bodies on their way
                        puts.pop(0).result()
            for put in puts:
                put.result()
        return merged_outcome(
            self.previous, counts, header, written, self.spool.lines, self.skipped, spool_bytes
        )
