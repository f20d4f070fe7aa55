"""The fleet snapshot's merge in parts, one worker process a part, on the vCPUs the update manager's
memory buys (issue #16: 1,000,000 vehicles reporting every 10 s).

One process merges about 6 million delta lines a tick in 59 CPU s at that scale, over the update
manager's 50 s timeout. Lambda gives a function one vCPU per 1,769 MB of memory (up to 6), so the merge
splits by VIN hash into ``parts`` (a power of two): worker ``p`` owns the shards whose number has
``p`` in its low bits, reads only member ``p`` of each delta (``adapters/fleet_delta_parts.py``) and
only its shards, and writes them. The coordinator (this tick) lists the deltas, reads the healing
sweep's share of the vehicles table and hands each worker its rows, then adds up what the workers
counted and writes the index last, as one process would. A merge in parts writes the same shards and
index as one process does (``tests/unit/test_snapshot_parts.py``).

Workers are processes started with ``python -m`` (Lambda has no ``/dev/shm``, which
``multiprocessing`` pools and queues need): a request on stdin, the result on stdout, both msgpack. A
worker that fails fails the tick before the index is written, so the next tick merges the same
deltas again (shards already written hold only newer lines, which the next merge keeps).

Parts are used when the update manager has more than one vCPU (``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``,
set by Lambda, or ``FLEETOTA_SNAPSHOT_WORKERS``) and the snapshot is at least that many shards.
"""

from __future__ import annotations

import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import msgspec

from fleetota_core.adapters.fleet_delta_parts import fetch_deltas, fetched_deltas
from fleetota_core.adapters.fleet_shard_merge import MergeOutcome, ShardMerge, merged_outcome, row_line
from fleetota_core.adapters.fleet_shards import SnapshotIndex, decode_index
from fleetota_core.adapters.fleet_snapshot import DELTA_PARTS, part_of
from fleetota_core.errors import FleetOTAError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from fleetota_core.adapters.fleet_snapshot import Row

logger = logging.getLogger(__name__)
WORKERS_ENV = "FLEETOTA_SNAPSHOT_WORKERS"
LAMBDA_MB_PER_VCPU = 1769
WORKER_COMMAND = (sys.executable, "-m", __name__)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])


class SnapshotWorkerError(FleetOTAError):
    """A merge worker failed; the tick writes no index, so the next one merges the same deltas."""


class PartRequest(msgspec.Struct):
    bucket: str
    index: bytes  # the previous snapshot's index, encoded (a merge in parts always has one)
    shards: int
    part: int
    parts: int
    keys: list[str]  # the deltas to merge, oldest first
    sweep: bytes  # the sweep's rows in this part, as NDJSON vehicle lines (merged after the deltas)
    header: dict[str, Any]  # as_of, high_water, rebuilt_at, sweep: what every shard's header holds
    now: str  # the tick's time, for the tally's "online"
    # Where the coordinator fetched the deltas (fleet_delta_parts.fetch_deltas); empty: read from S3.
    deltas_dir: str = ""


class PartResult(msgspec.Struct):
    counts: list[int]  # vehicles per shard: this part's shards, 0 for the others
    written: int
    spooled: int
    skipped: int
    spool_bytes: int
    tally: dict[str, Any]  # FleetTally.state()
    cpu_s: float = 0.0  # the merge's
    process_cpu_s: float = 0.0  # the worker process's, its start and imports included
    wall_s: float = 0.0
    peak_mb: float = 0.0
    calls: dict[str, int] = {}


# Runs the requests, all at once, and gives their results in order (``process_runner``; tests run
# them in this process).
PartRunner: TypeAlias = Callable[[list[PartRequest]], list[PartResult]]


def snapshot_workers(environ: Mapping[str, str] = os.environ) -> int:
    """Worker processes for the merge: ``FLEETOTA_SNAPSHOT_WORKERS`` if set, else the vCPUs Lambda
    gives the function's memory; a power of two, at most ``DELTA_PARTS``."""
    configured = environ.get(WORKERS_ENV, "").strip()
    if configured and not configured.isdigit():
        logger.warning(
            "%s=%r is not a whole number of workers; merging in one process", WORKERS_ENV, configured
        )
        wanted = 1
    elif configured:
        wanted = int(configured)
    else:
        memory = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "").strip()
        wanted = int(memory) // LAMBDA_MB_PER_VCPU if memory.isdigit() else 1
    workers = 1
    while workers * 2 <= min(max(wanted, 1), DELTA_PARTS):
        workers *= 2
    return workers


def parts_for(workers: int, previous: SnapshotIndex | None, shards: int) -> int:
    """How many parts this tick's merge can run in: 1 without a sharded snapshot to start from (a
    first tick, or the single document of earlier versions), else at most one part a shard."""
    if previous is None or previous.legacy:
        return 1
    parts = workers
    while parts > 1 and (previous.shards % parts or max(shards, previous.shards) % parts):
        parts //= 2
    return parts


def merge_part(
    s3: Any,
    request: PartRequest,
    normalise: Callable[[dict[str, Any]], Row],
    tally: Any,
) -> PartResult:
    """One worker's merge: its part of every delta and its shards; ``tally`` is a ``FleetTally``."""
    started, cpu = time.monotonic(), time.process_time()
    merge = ShardMerge(
        s3,
        request.bucket,
        decode_index(request.index),
        request.shards,
        normalise,
        tally,
        request.part,
        request.parts,
        fetched_deltas(Path(request.deltas_dir), request.keys) if request.deltas_dir else None,
    )
    merge.add_deltas(request.keys)
    if request.sweep:
        merge.route(line for line in request.sweep.split(b"\n") if line)
    outcome = merge.write(request.header)
    return PartResult(
        outcome.index.counts,
        outcome.written,
        outcome.spooled,
        outcome.skipped,
        outcome.spool_bytes,
        tally.state(),
        cpu_s=round(time.process_time() - cpu, 3),
        wall_s=round(time.monotonic() - started, 3),
        peak_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )


def process_runner(command: Sequence[str] = WORKER_COMMAND) -> PartRunner:
    """Run each request in a process of its own (``command``, request on stdin), all at once."""

    def run(requests: list[PartRequest]) -> list[PartResult]:
        environment = dict(os.environ)  # the invoking thread's view (local runtime: its function's)
        # Where this package was imported from (Lambda: /var/task, which is not on a child's path).
        path = [_PACKAGE_ROOT, *filter(None, environment.get("PYTHONPATH", "").split(os.pathsep))]
        environment["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))

        def one(request: PartRequest) -> PartResult:
            done = subprocess.run(
                list(command),
                input=msgspec.msgpack.encode(request),
                capture_output=True,
                env=environment,
                check=False,
            )
            if done.returncode != 0:
                tail = done.stderr.decode(errors="replace").strip().splitlines()[-5:]
                raise SnapshotWorkerError(
                    f"snapshot merge part {request.part} of {request.parts} exited with {done.returncode}: "
                    + " | ".join(tail)
                )
            if done.stderr.strip():  # its warnings (a delta skipped, lines left out): into this log
                logger.warning(
                    "snapshot merge part %d of %d: %s",
                    request.part,
                    request.parts,
                    done.stderr.decode(errors="replace").strip(),
                )
            return msgspec.msgpack.decode(done.stdout, type=PartResult)

        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            return list(pool.map(one, requests))

    return run


def merge_in_parts(
    s3: Any,
    bucket: str,
    previous: SnapshotIndex,
    shards: int,
    parts: int,
    keys: list[str],
    sweep_rows: Iterable[tuple[str, Row]],
    header: dict[str, Any],
    now: datetime,
    tally: Any,
    run: PartRunner,
) -> tuple[MergeOutcome, list[PartResult]]:
    """The merge of ``ShardMerge`` (deltas, then the sweep's rows), run as ``parts`` workers by ``run``;
    the workers' tallies are added to ``tally``. The index to write, as ``ShardMerge.write`` gives it.

    The deltas are fetched once, here, into a temporary directory the workers read (issue #16: a GET
    a delta, not one a part); each worker still inflates only its members of each.
    """
    swept: list[list[bytes]] = [[] for _ in range(parts)]
    for vin, row in sweep_rows:
        swept[part_of(vin.encode(), parts)].append(row_line(vin, row))
    index = previous.encode()
    with tempfile.TemporaryDirectory(prefix="fleet-deltas-") as deltas_dir:
        fetched = fetch_deltas(s3, bucket, keys, Path(deltas_dir))
        logger.info("fleet snapshot: %d deltas fetched for %d parts, %d bytes", len(keys), parts, fetched)
        requests = [
            PartRequest(
                bucket,
                index,
                shards,
                part,
                parts,
                keys,
                b"\n".join(swept[part]) + b"\n" if swept[part] else b"",
                header,
                now.isoformat(),
                deltas_dir,
            )
            for part in range(parts)
        ]
        results = run(requests)
    counts = [0] * max(shards, previous.shards)
    for result in results:
        counts = [a + b for a, b in zip(counts, result.counts, strict=True)]
        tally.absorb(result.tally)
    outcome = merged_outcome(
        previous,
        counts,
        header,
        sum(r.written for r in results),
        sum(r.spooled for r in results),
        sum(r.skipped for r in results),
        sum(r.spool_bytes for r in results),
    )
    return outcome, results


def serve(s3: Any, calls: Mapping[str, int] | None = None) -> None:
    """A worker: one request on stdin, its result on stdout, over ``s3``; ``calls``, if given, the
    requests ``s3`` counted (a benchmark's), reported with the result."""
    from fleetota_core.services.ingest.fleet_health import FleetTally, snapshot_row

    request = msgspec.msgpack.decode(sys.stdin.buffer.read(), type=PartRequest)
    result = merge_part(s3, request, snapshot_row, FleetTally(datetime.fromisoformat(request.now)))
    result.calls = dict(calls or {})
    result.process_cpu_s = round(time.process_time(), 3)
    sys.stdout.buffer.write(msgspec.msgpack.encode(result))


def main() -> None:
    """A worker over S3 as the update manager reaches it."""
    from fleetota_core.adapters.clients import client_factory
    from fleetota_core.settings import Settings

    serve(client_factory(Settings()).s3)


if __name__ == "__main__":
    main()
