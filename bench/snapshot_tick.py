"""The update manager's fleet-snapshot tick at scale: sharded against the single document, per tick.

    PYTHONPATH=. .venv/bin/python bench/snapshot_tick.py [--vehicles 1000000] [--deltas 100]
        [--readings-per-tick 1 6] [--workers 1 4] [--only steady] [--json]

Each tick runs in its own child process over a bucket kept on disk (a folder; every request counted),
so the child's peak resident memory (``ru_maxrss``) is the tick's, not the stored objects'. The
fleet has reported within the minute: the deltas of one tick hold every vehicle once (reporting every
60 s) or, with ``--readings-per-tick N``, N times (every 60/N s: N=6 at 10 s), each vehicle's readings
with increasing (ts, seq) in N x ``--deltas`` deltas, interleaved in time order as the telemetry
processor writes them (one delta per invocation, the newest state of each vehicle in its objects).
Measured, each with CPU seconds, wall seconds, peak RSS and requests:

* previous: the single-document tick (decode the whole snapshot, merge every delta, re-encode);
* shards, first tick: the same input after the upgrade (the single document read as a stream and
  split into shards, then deleted);
* shards, steady tick: the index and shards plus a new minute of deltas (one such tick per N given);
* shards, steady tick with a healing-sweep share (128 Scan pages of a counting vehicles table);
* eligibility: 5,000 VINs looked up in pages of 200 through the tick's last-seen source;
* with ``--workers``, each steady tick once per count given, its merge in that many parts, a worker
  process each (``services/ingest/snapshot_parts.py``): the CPU of the tick and of each part, and the
  critical path (the coordinator's CPU plus the slowest part's: the tick's time on a Lambda with a
  vCPU a worker, which this 2-core machine is not for more than one).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from fleetota_core.adapters.fleet_snapshot import (  # noqa: E402
    DELTA_PREFIX,
    FORMAT,
    SCHEMA_VERSION,
    SNAPSHOT_COLUMNS,
    SNAPSHOT_KEY,
    encode,
    encode_delta,
    list_deltas,
    read_document,
    time_bound_key,
)
from fleetota_core.services.ingest import fleet_health, snapshot_parts  # noqa: E402

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
METROS = ("San Francisco Bay Area", "Denver", "Berlin", "London")


@functools.cache
def vin(n: int) -> str:
    from fleetota_core.domain.vin import with_check_digit

    return with_check_digit(f"5YJ3E1EA0P{n:07d}")


def values(n: int, ts_ms: int, seq: int, jitter_ms: int = 20_000) -> dict[str, Any]:
    """One vehicle's reading, taken up to ``jitter_ms`` before ``ts_ms``; the numbers vary per vehicle
    and reading, as real ones do (so gzip and the merge's spool compress them as they would a real
    fleet's, not a column of equal values)."""
    r = random.Random(n * 1_000_003 + seq)
    ts_ms -= r.randrange(jitter_ms)
    return {
        "vin": vin(n), "make": "Tesla", "model": "Tesla Model 3", "model_year": 2023, "hw_rev": "HW4",
        "firmware_version": "1.0.0", "region": "us-west", "metro": METROS[n % 4],
        "last_ts": datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(), "last_ts_ms": ts_ms,
        "last_seq": seq, "lat": round(37 + r.random(), 6), "lon": round(-122 - r.random(), 6),
        "speed_kph": round(r.uniform(0, 120), 1), "soc_pct": round(r.uniform(5, 100), 1),
        "battery_category": "ok", "charging": r.random() < 0.2,
        "drive_state": r.choice(("parked", "driving", "charging")),
        "network": r.choice(("LTE", "5G", "WIFI")),
        "signal_dbm": r.randrange(-120, -60), "odometer_km": round(r.uniform(100, 90_000), 1),
        "online": True, "needs_update": r.random() < 0.5,
    }  # fmt: skip


class DiskS3:
    """A bucket in a folder: keys are files, every request counted."""

    def __init__(self, folder: Path, calls: Counter[str]) -> None:
        self.folder, self.calls = folder, calls

    def _path(self, key: str) -> Path:
        return self.folder / key.replace("/", "%")

    def put_object(self, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.calls["S3.PutObject"] += 1
        self._path(Key).write_bytes(Body)
        return {}

    def get_object(self, Key: str, **_: Any) -> dict[str, Any]:
        self.calls["S3.GetObject"] += 1
        path = self._path(Key)
        if not path.exists():
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": Key}}, "GetObject")
        return {"Body": path.open("rb")}

    def list_objects_v2(self, Prefix: str, StartAfter: str = "", **_: Any) -> dict[str, Any]:
        self.calls["S3.ListObjectsV2"] += 1
        keys = sorted(p.name.replace("%", "/") for p in self.folder.iterdir())
        return {"Contents": [{"Key": k} for k in keys if k.startswith(Prefix) and k > StartAfter]}

    def delete_objects(self, Delete: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.calls["S3.DeleteObjects"] += 1
        for obj in Delete["Objects"]:
            self._path(obj["Key"]).unlink(missing_ok=True)
        return {}


def _lines(numbers: range, ts_ms: int, seq: int, at: datetime) -> bytes:
    rows = fleet_health.fleet_rows((values(i, ts_ms, seq) for i in numbers), at)
    return msgspec.json.Encoder().encode_lines([{"vin": v, **r} for v, r in rows.items()])


def write_fleet(folder: Path, vehicles: int, deltas: int, readings: int = 1) -> None:
    """The single document of a running fleet (seen 2 minutes ago) and a minute of deltas."""
    seen_ms = int((NOW - timedelta(minutes=2)).timestamp() * 1000)
    swept = NOW - timedelta(minutes=10)
    header = {
        "format": FORMAT, "schema_version": SCHEMA_VERSION, "as_of": NOW.isoformat(),
        "high_water": time_bound_key(NOW - timedelta(seconds=30)), "rebuilt_at": swept.isoformat(),
        "sweep": {"started_at": swept.isoformat(), "segments": 16, "todo": []},
        "columns": list(SNAPSHOT_COLUMNS),
    }  # fmt: skip
    with gzip.open(folder / SNAPSHOT_KEY.replace("/", "%"), "wb", compresslevel=3) as out:
        out.write(msgspec.json.encode(header) + b"\n")
        for start in range(0, vehicles, 20_000):
            out.write(_lines(range(start, min(vehicles, start + 20_000)), seen_ms, 2, NOW))
    write_deltas(folder, vehicles, deltas, NOW + timedelta(minutes=1), 3, readings)


def write_deltas(
    folder: Path, vehicles: int, deltas: int, tick: datetime, seq: int, readings: int = 1
) -> None:
    """A minute of deltas before ``tick``: every vehicle ``readings`` times, in ``readings * deltas``.

    One reading (reporting every 60 s): vehicle ranges in ``deltas`` deltas. More: the minute is cut
    into ``readings`` report periods of ``deltas`` deltas each, in time order (delta keys, readings'
    ``last_ts_ms`` within the delta's slice of time); every period each vehicle lands in a delta at
    random (SQS spreads the simulator's objects over the processor's invocations), so a vehicle's
    readings are interleaved with the fleet's across deltas, its (ts, seq) increasing with its delta.
    """
    fresh_ms = int((tick - timedelta(seconds=40)).timestamp() * 1000)
    per = -(-vehicles // deltas)
    if readings == 1:
        for d in range(deltas):
            part = range(d * per, min(vehicles, (d + 1) * per))
            rows = fleet_health.fleet_rows((values(i, fresh_ms, seq) for i in part), tick)
            key = f"{DELTA_PREFIX}{fresh_ms:013d}-{d:012d}.ndjson.gz"
            (folder / key.replace("/", "%")).write_bytes(encode_delta(rows, tick.isoformat()))
        return
    period_ms = 60_000 // readings
    slot_ms = period_ms // deltas
    assert slot_ms >= 1, "more deltas than milliseconds in a report period"
    order, shuffle = list(range(vehicles)), random.Random(seq).shuffle
    for reading in range(readings):
        shuffle(order)
        start_ms = fresh_ms - 60_000 + reading * period_ms
        for slot in range(deltas):
            end_ms = start_ms + (slot + 1) * slot_ms
            part = order[slot * per : (slot + 1) * per]
            step = seq * readings + reading
            rows = fleet_health.fleet_rows((values(i, end_ms, step, slot_ms) for i in part), tick)
            key = f"{DELTA_PREFIX}{end_ms:013d}-{reading * deltas + slot:012d}.ndjson.gz"
            (folder / key.replace("/", "%")).write_bytes(encode_delta(rows, tick.isoformat()))


def previous_tick(clients: Any, resources: Any, now: datetime) -> fleet_health.FleetHealth:
    """The single-document tick this replaces (fleet_health.refresh_fleet before the shards, no sweep)."""
    settled = time_bound_key(now - fleet_health.DELTA_SETTLE)
    document = read_document(clients.s3, resources.telemetry_bucket, SNAPSHOT_KEY)
    assert document is not None
    rows = document.rows()
    keys = list_deltas(clients.s3, resources.telemetry_bucket, document.high_water, settled)
    fleet_health._merge_deltas(clients, resources, rows, keys)
    fleet_health.refresh_online(rows, now)
    body = encode(rows, now.isoformat(), keys[-1] if keys else document.high_water, document.rebuilt_at)
    clients.s3.put_object(Key=SNAPSHOT_KEY, Body=body)
    health = fleet_health.fleet_health(rows, now)
    from fleetota_core.adapters.cloudwatch_metrics import MetricsWriter

    MetricsWriter(fleet_health.NAMESPACE).publish(fleet_health.health_datums(health), now)
    return health


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def part_worker(folder: Path) -> None:
    """One merge worker (``snapshot_parts.main``) over the bucket in ``folder``, its requests counted."""
    calls: Counter[str] = Counter()
    snapshot_parts.serve(DiskS3(folder, calls), calls)


def child(kind: str, folder: Path, at: datetime, vehicles: int) -> dict[str, Any]:
    """One tick in this process (its merge in parts when FLEETOTA_SNAPSHOT_WORKERS > 1, each part a
    process of ``part_worker``); its figures as a dict."""
    sys.path.insert(0, str(ROOT / "bench"))
    calls: Counter[str] = Counter()
    dynamodb = None
    if kind == "sweep":
        from fleet_scale import CountingDynamo

        dynamodb = CountingDynamo(vehicles, calls, 0.0)
    clients = SimpleNamespace(s3=DiskS3(folder, calls), dynamodb=dynamodb)
    resources = SimpleNamespace(telemetry_bucket="telemetry", vehicles_table="vehicles")
    before = _rss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    lookups: dict[str, Any] = {}
    parts: list[snapshot_parts.PartResult] = []
    if kind == "previous":
        health = previous_tick(clients, resources, at)
    else:
        run = snapshot_parts.process_runner([sys.executable, __file__, "--part-worker", str(folder)])

        def counted(requests: list[snapshot_parts.PartRequest]) -> list[snapshot_parts.PartResult]:
            results = run(requests)
            parts.extend(results)
            for part in results:
                calls.update(part.calls)
            return results

        refresh = fleet_health.refresh_fleet(clients, resources, at, run_parts=counted)  # type: ignore[arg-type]
        health = refresh.health
        if kind == "eligibility":
            tick_s, tick_cpu = time.perf_counter() - started, time.process_time() - cpu
            picked = random.Random(7).sample(range(vehicles), min(5000, vehicles))
            found = 0
            for start in range(0, len(picked), 200):
                found += len(refresh.rows.lookup([vin(i) for i in picked[start : start + 200]]))  # type: ignore[attr-defined]
            lookups = {
                "found": found,
                "shards_read": refresh.rows.fetched,  # type: ignore[attr-defined]
                "lookup_seconds": round(time.perf_counter() - started - tick_s, 2),
                "lookup_cpu_seconds": round(time.process_time() - cpu - tick_cpu, 2),
            }
    wall, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    in_parts = {}
    if parts:
        # On a Lambda with a vCPU a worker, the tick takes the coordinator's CPU plus the slowest part.
        in_parts = {
            "parts": len(parts),
            "coordinator_cpu_seconds": round(cpu_s, 2),
            "part_cpu_seconds": [p.process_cpu_s for p in parts],  # each worker's, imports included
            "part_peak_rss_mb": [p.peak_mb for p in parts],
            "critical_path_cpu_seconds": round(cpu_s + max(p.process_cpu_s for p in parts), 2),
        }
        cpu_s += sum(p.process_cpu_s for p in parts)
    return {
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu_s, 2),
        **in_parts,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rss_before_mb": round(before),
        "requests": dict(sorted(calls.items())),
        "vehicles": health.vehicles,
        "online": health.online,
        **lookups,
    }


def run_child(
    kind: str, folder: Path, at: datetime, vehicles: int, profile: str | None = None, workers: int = 1
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", kind, "--dir", str(folder), "--at", at.isoformat()]
    command += ["--vehicles", str(vehicles)] + (["--profile", profile] if profile else [])
    env = {**os.environ, snapshot_parts.WORKERS_ENV: str(workers)}
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=1_000_000)
    parser.add_argument(
        "--deltas",
        type=int,
        default=100,
        help="deltas a tick per reading of each vehicle (N readings: N x DELTAS deltas). At 1M vehicles "
        "100 objects/s reach the processor, 10 an invocation: 100 deltas a minute per reading",
    )
    parser.add_argument(
        "--readings-per-tick",
        type=int,
        nargs="+",
        default=[1],
        metavar="N",
        help="times each vehicle reports in a tick's minute of deltas: 1 (every 60 s, the default) or, "
        "at 10 s reporting, 6 (with --deltas 100: 600 deltas, 6M vehicle lines at 1M vehicles). "
        "Several values: one steady tick each, in this order, after the first tick (which uses the first)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", default="", help="run only the ticks whose label contains this")
    parser.add_argument("--profile", metavar="DIR", help="write each tick's cProfile stats to DIR")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        help="merge each steady tick in this many parts, a process each (FLEETOTA_SNAPSHOT_WORKERS); "
        "several give one tick each, in the same run",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--part-worker", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--at", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part_worker:
        part_worker(Path(args.part_worker))
        return
    if args.child:
        tick_args = (args.child, Path(args.dir), datetime.fromisoformat(args.at), args.vehicles)
        if args.profile:
            import cProfile

            with cProfile.Profile(time.process_time) as profile:  # CPU: the machine is shared
                result = child(*tick_args)
            profile.dump_stats(args.profile)
        else:
            result = child(*tick_args)
        print(json.dumps(result))
        return
    n, readings = args.vehicles, args.readings_per_tick
    load = os.getloadavg()[0]
    results: dict[str, Any] = {"vehicles": n, "deltas": args.deltas, "readings_per_tick": readings}
    results["workers"] = args.workers
    results["load_average"] = load
    print(
        f"{n:,} vehicles, {args.deltas} deltas a tick per reading, {readings} readings a vehicle; "
        f"load average {load:.1f}"
    )
    tick = NOW + timedelta(minutes=1)
    profile = Path(args.profile) if args.profile else None
    if profile:
        profile.mkdir(parents=True, exist_ok=True)

    def run(label: str, kind: str, folder: Path, at: datetime, workers: int = 1) -> None:
        stats = str(profile / f"{label.replace(' ', '_').replace(':', '')}.prof") if profile else None
        results[label] = run_child(kind, folder, at, n, stats, workers)
        print(f"{label:<52} {json.dumps(results[label])}", flush=True)

    with tempfile.TemporaryDirectory(prefix="snapshot-tick-") as tmp:
        previous, sharded = Path(tmp, "previous"), Path(tmp, "sharded")
        previous.mkdir()
        write_fleet(previous, n, args.deltas, readings[0])
        sharded.mkdir()
        for path in previous.iterdir():
            (sharded / path.name).write_bytes(path.read_bytes())
        size = (previous / SNAPSHOT_KEY.replace("/", "%")).stat().st_size
        print(f"single document: {size / 1e6:.0f} MB gzip")
        label = "previous: single document"
        if not args.only or args.only in label:
            run(label, "previous", previous, tick)
        shutil.rmtree(previous)
        run("shards: first tick (from the single document)", "shards", sharded, tick)
        minute = 1
        steady = [
            (
                f"shards: steady tick, {r} reading{'s' if r > 1 else ''} a vehicle"
                + (f", {w} worker{'s' if w > 1 else ''}" if len(args.workers) > 1 or w > 1 else ""),
                "shards",
                r,
                w,
            )
            for r in readings
            for w in args.workers
        ]
        for label, kind, per_tick, workers in (
            *steady,
            ("shards: steady tick + 5,000 lookups", "eligibility", readings[0], 1),
            ("shards: steady tick + sweep share", "sweep", readings[0], 1),
        ):
            if args.only and args.only not in label:
                continue
            minute = 40 if kind == "sweep" else minute + 1
            at = NOW + timedelta(minutes=minute)
            write_deltas(sharded, n, args.deltas, at, 2 + minute, per_tick)
            run(label, kind, sharded, at, workers)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
