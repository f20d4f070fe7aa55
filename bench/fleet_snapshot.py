"""The fleet snapshot's CPU cost at N vehicles: the update manager's tick work and the dashboard's read.

    .venv/bin/python bench/fleet_snapshot.py [--vehicles 100000] [--repeats 3]

No S3: the synthetic fleet (``fleetota_core/local/sample_fleet.py``, as bench/dashboard_render.py
writes it) is encoded once, then timed (best of ``--repeats``):

* tick: what ``publish_fleet_health`` does with a snapshot besides S3 calls: decode the header and
  rows, recompute ``online``, compute fleet health, encode and gzip the new snapshot;
* dashboard: decode the header and read the vehicle lines into a DataFrame (``snapshot_frame``).
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dashboard_render import snapshot_rows

from fleetota_core.adapters.fleet_snapshot import decode, encode
from fleetota_core.services.ingest.fleet_health import fleet_health, refresh_online
from fleetota_core.views.fleet_snapshot import snapshot_frame


def best(repeats: int, step) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    now = datetime.now(UTC)
    body = encode(snapshot_rows(args.vehicles), now.isoformat(), "", now.isoformat())

    def tick() -> None:
        rows = decode(body).rows()
        refresh_online(rows, now)
        fleet_health(rows, now)
        encode(rows, now.isoformat(), "", now.isoformat())

    tick_s = best(args.repeats, tick)
    read_s = best(args.repeats, lambda: snapshot_frame(decode(body)))
    print(f"load average {os.getloadavg()[0]:.1f}; {args.vehicles:,} vehicles")
    print(f"snapshot: {len(gzip.decompress(body)) / 1e6:.1f} MB NDJSON, {len(body) / 1e6:.1f} MB gzipped")
    print(f"tick (decode, online, health, encode): {tick_s:.2f} s; dashboard read: {read_s:.2f} s")


if __name__ == "__main__":
    main()
