"""Batching: buffered records become gzip NDJSON objects under ``raw/dt=YYYY-MM-DD/hour=HH/``."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from fleetota_core.errors import TransientError, UnavailableError

if TYPE_CHECKING:
    from pathlib import Path

    from fleetota_core.adapters.telemetry_store import TelemetryStore


class BatchSink(Protocol):
    def put_batch(self, key: str, body: bytes) -> None: ...


class DirectorySink:
    """Writes the same objects to files under ``root`` (``--out DIR``): same keys, same bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put_batch(self, key: str, body: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


class S3Sink:
    """Uploads to the telemetry bucket through the fleetota_core adapter."""

    def __init__(self, store: TelemetryStore) -> None:
        self.store = store

    def put_batch(self, key: str, body: bytes) -> None:
        self.store.put_batch(key, body)


def batch_key(t: float, run_id: str, number: int) -> str:
    """Partitioned by upload time, as a gateway or Firehose would: late readings land later."""
    at = datetime.fromtimestamp(int(t), UTC)
    return f"raw/dt={at:%Y-%m-%d}/hour={at:%H}/{at:%Y%m%dT%H%M%SZ}-{run_id}-{number:06d}.ndjson.gz"


# A slow, throttled or unreachable backend delays uploads: the records stay buffered and a later flush
# tries again, however long that takes (the vehicles hold their new readings meanwhile, see
# FleetSimulation). A permanent failure (a missing bucket, denied access) ends the run at once:
# retrying it cannot help.
# After a failed upload, flushes back off: skip 1, 2, 4, ... up to this many before trying again.
MAX_SKIPPED_FLUSHES = 8


class BatchUploader:
    """Buffers NDJSON lines and writes them out in objects of at most ``batch_size`` records."""

    def __init__(self, sink: BatchSink, batch_size: int, run_id: str) -> None:
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.sink = sink
        self.batch_size = batch_size
        self.run_id = run_id
        self.buffer: list[str] = []
        self.records_sent = 0
        self.objects_sent = 0
        self.bytes_sent = 0
        self.records_late = 0  # sent after an upload of theirs had failed
        self.failed_uploads = 0  # every upload cut short by a transient or unavailable backend
        self.outages = 0  # times the backend went from answering to failing
        self.failed_flushes = 0  # consecutive flushes cut short by a transient or unavailable backend
        self.skip_flushes = 0  # flushes still to let pass before trying a failing backend again
        self.partial_held = False  # a part-filled object was kept back at the last flush
        self._delayed = 0  # records at the head of the buffer whose upload has failed at least once

    @property
    def backend_down(self) -> bool:
        """The last upload failed and none has succeeded since: vehicles should hold their readings."""
        return self.failed_flushes > 0

    def add(self, lines: list[str]) -> None:
        self.buffer.extend(lines)

    def flush(self, t: float, *, hold_partial: bool = False) -> None:
        """Upload everything buffered; records leave the buffer only once their object is stored.

        ``hold_partial``: upload only full objects and keep a part-filled remainder back for one
        flush, so frequent flushes still give full objects (objects are what S3, SQS and the
        processor are paid per); a remainder already held once goes out regardless.
        """
        if self.skip_flushes:
            self.skip_flushes -= 1
            return
        while self.buffer:
            if hold_partial and len(self.buffer) < self.batch_size and not self.partial_held:
                self.partial_held = True
                return
            chunk = self.buffer[: self.batch_size]
            # mtime=0: no wall-clock in the gzip header, so equal records give equal bytes.
            body = gzip.compress(("\n".join(chunk) + "\n").encode(), compresslevel=6, mtime=0)
            try:
                self.sink.put_batch(batch_key(t, self.run_id, self.objects_sent + 1), body)
            except (TransientError, UnavailableError):
                if not self.failed_flushes:
                    self.outages += 1
                self.failed_uploads += 1
                self.failed_flushes += 1
                self._delayed = len(self.buffer)
                self.skip_flushes = min(2 ** (self.failed_flushes - 1), MAX_SKIPPED_FLUSHES)
                return  # keep the records; a later flush tries again
            self.failed_flushes = 0
            self.partial_held = False  # any held lines were first in line: they are in this object
            del self.buffer[: len(chunk)]
            late = min(len(chunk), self._delayed)
            self._delayed -= late
            self.records_late += late
            self.records_sent += len(chunk)
            self.objects_sent += 1
            self.bytes_sent += len(body)
