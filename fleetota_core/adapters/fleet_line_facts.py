"""What the snapshot merge decodes of a vehicle line, the rest passed through as bytes (issue #16).

:class:`Facts` are what the merge and fleet health read of each winning line; a :class:`Stamp` (VIN
and (ts, seq)) is all it reads of a delta line to know whether it can win, about half the work of
the facts: at 10 s reporting a tick's deltas hold about six lines a vehicle, and one of them wins.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from fleetota_core.adapters.fleet_shards import VIN_OPEN
from fleetota_core.adapters.fleet_snapshot import MAX_DOCUMENT_BYTES, decode


class Facts(msgspec.Struct):
    """What the merge and fleet health read of a vehicle line; the rest stays bytes."""

    vin: str
    last_ts_ms: int
    last_seq: int
    network: str | None = None
    soc_pct: float | None = None
    needs_update: bool = False
    firmware_version: str | None = None
    region: str | None = None


FACTS = msgspec.json.Decoder(Facts)
# Within this, a line normalised later (``snapshot_row`` reads numbers through float) keeps its
# (ts, seq), so a stamp decoded from the raw line is the one the merge compares; beyond, the line's
# facts decide (``ShardMerge._spool_newest_each``).
_Exact = Annotated[int, msgspec.Meta(gt=-(2**53), lt=2**53)]


class Stamp(msgspec.Struct, gc=False):
    """What decides whether a delta line can win: its VIN and (ts, seq); the rest is skipped."""

    vin: Annotated[str, msgspec.Meta(min_length=1)]
    last_ts_ms: _Exact
    last_seq: _Exact


STAMPS = msgspec.json.Decoder(Stamp)
NO_STAMP = (msgspec.ValidationError, msgspec.DecodeError)


def raw_lines(body: bytes) -> tuple[bytes, list[bytes]]:
    """A delta's NDJSON vehicle lines, and the same split into its non-empty lines."""
    raw = decode(body, MAX_DOCUMENT_BYTES).lines
    return raw, list(filter(None, raw.split(b"\n")))


def each_a_vin_line(raw: bytes, lines: list[bytes]) -> bool:
    """Every line of ``raw`` opens as this version's vehicle line does, so one C call decoding the
    lines gives one value a line, in order, or fails (a line of two values makes more)."""
    return raw.count(b"\n" + VIN_OPEN) + raw.startswith(VIN_OPEN) == len(lines)
