"""The local stack's snapshot file: a checked header, then the payload, written atomically.

A crash can leave a temporary file behind but never a half-written snapshot under the real name
(write to a temporary file, fsync, rename, fsync the folder). A file that is truncated, altered or
written by another moto version is refused with :class:`SnapshotUnreadable` before anything is
unpickled, so start-up can fall back to an empty stack and say why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

MAGIC = b"FLEETOTA-LOCAL-SNAPSHOT 1\n"
SNAPSHOT_NAME = "local-stack.snapshot"


class SnapshotUnreadable(Exception):
    """The snapshot file exists but cannot be used (corrupt, truncated or from another moto)."""


@dataclass(frozen=True)
class SnapshotHeader:
    format_version: str  # what wrote the payload, e.g. "moto 5.2.5": another one may not unpickle it
    created: float  # epoch seconds
    size: int
    sha256: str


def encode(payload: bytes, format_version: str, created: float) -> bytes:
    header = {
        "format": format_version,
        "created": created,
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload


def decode(blob: bytes, format_version: str) -> tuple[SnapshotHeader, bytes]:
    """The header and the verified payload of ``blob``.

    Raises
    ------
    SnapshotUnreadable
        Wrong magic, unreadable header, wrong size or checksum, or another ``format_version``.
    """
    if not blob.startswith(MAGIC):
        raise SnapshotUnreadable("not a FleetOTA snapshot (bad magic)")
    line_end = blob.find(b"\n", len(MAGIC))
    if line_end < 0:
        raise SnapshotUnreadable("truncated header")
    try:
        raw = json.loads(blob[len(MAGIC) : line_end])
        header = SnapshotHeader(
            format_version=str(raw["format"]),
            created=float(raw["created"]),
            size=int(raw["size"]),
            sha256=str(raw["sha256"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise SnapshotUnreadable(f"unreadable header: {exc}") from exc
    payload = blob[line_end + 1 :]
    if len(payload) != header.size:
        raise SnapshotUnreadable(f"truncated: {len(payload)} of {header.size} payload bytes")
    if hashlib.sha256(payload).hexdigest() != header.sha256:
        raise SnapshotUnreadable("checksum mismatch")
    if header.format_version != format_version:
        raise SnapshotUnreadable(f"written by {header.format_version}, this is {format_version}")
    return header, payload


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (Windows), hence best effort.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_snapshots(folder: Path) -> list[Path]:
    """Delete the snapshot and any temporary or set-aside copies of it; returns what was deleted."""
    removed = []
    for candidate in (*folder.glob(f"{SNAPSHOT_NAME}*"), *folder.glob(f".{SNAPSHOT_NAME}.*")):
        with contextlib.suppress(OSError):
            candidate.unlink()
            removed.append(candidate)
    return removed
