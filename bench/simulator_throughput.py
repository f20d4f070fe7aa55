"""Does the fleet simulator keep up with real time at 10,000 vehicles, 10 s interval, on the local stack?

    .venv/bin/python bench/simulator_throughput.py [--vehicles 10000] [--interval 10] [--duration 120]

Starts moto in this process on a free port and provisions it from infra/template.yaml (the same
way as ``python -m fleetota_core local up``), then runs the real CLI as a subprocess twice:

* real time: ``python -m simulator --vehicles N --interval I --duration D --speed 1``. Keeps up if no
  tick finished a whole interval behind its wall-clock due time (the CLI reports its worst lag).
  CPU is the simulator process's own CPU seconds per wall second (moto's work is in this process).
* capacity: the same fleet at ``--speed 0`` for ``--capacity-ticks`` ticks, uploads included: the
  records/s one core sustains. Baseline: the rate real time needs (N / I records/s); the ratio is
  capacity / needed.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable from a fresh clone without installing the package

from fleetota_core.adapters.clients import client_factory  # noqa: E402
from fleetota_core.adapters.telemetry_store import TelemetryStore  # noqa: E402
from fleetota_core.local.provision import provision  # noqa: E402
from fleetota_core.local.server import reset_moto, start_moto  # noqa: E402
from fleetota_core.local.stack_spec import read_stack_spec  # noqa: E402
from fleetota_core.settings import Settings  # noqa: E402

DONE = re.compile(
    r"done: (\d+) ticks in ([\d.]+) s wall, ([\d.]+) s CPU; ([\d,]+) readings = ([\d,]+) sent .* "
    r"max lag ([\d.]+) s"
)


def _run_cli(port: int, args: list[str]) -> dict[str, float]:
    env = {**os.environ, "FLEETOTA_MODE": "local", "FLEETOTA_LOCAL_HOST": "127.0.0.1"}
    env |= {"FLEETOTA_LOCAL_PORT": str(port), "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "simulator", *args, "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"simulator failed: {proc.stderr.strip()}")
    match = DONE.search(proc.stdout)
    if match is None:
        raise SystemExit(f"no summary in the simulator's output:\n{proc.stdout}")
    ticks, loop_wall, _, generated, sent, max_lag = match.groups()
    print(
        f"  $ python -m simulator {' '.join(args)}\n  {match.group(0)}{proc.stdout[match.end() :].rstrip()}"
    )
    return {
        "ticks": int(ticks),
        "loop_wall_s": float(loop_wall),
        "process_wall_s": wall,
        "process_cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "generated": int(generated.replace(",", "")),
        "sent": int(sent.replace(",", "")),
        "max_lag_s": float(max_lag),
    }


def _stored_records(settings: Settings) -> tuple[int, int]:
    clients = client_factory(settings)
    store = TelemetryStore(read_stack_spec(settings).resources.telemetry_bucket, clients.s3)
    keys = list(store.list_keys())
    records = sum(gzip.decompress(store.get_batch(key)).count(b"\n") for key in keys)
    return len(keys), records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=120.0, help="wall seconds of the real-time run")
    parser.add_argument("--capacity-ticks", type=int, default=20)
    args = parser.parse_args()

    server = start_moto("127.0.0.1", 0)
    port = server.get_host_and_port()[1]
    try:
        settings = Settings(mode="local", local_host="127.0.0.1", local_port=port)
        reset_moto(settings.endpoint_url or "")
        provision(read_stack_spec(settings), client_factory(settings))
        fleet = ["--vehicles", str(args.vehicles), "--interval", str(args.interval), "--seed", "1"]

        real = _run_cli(port, [*fleet, "--duration", str(args.duration), "--speed", "1"])
        objects, stored = _stored_records(settings)
        needed = args.vehicles / args.interval
        keeps_up = (
            real["max_lag_s"] < args.interval and real["ticks"] >= int(args.duration / args.interval) - 1
        )
        cpu_share = real["process_cpu_s"] / real["process_wall_s"]
        print(f"real time: {args.vehicles:,} vehicles every {args.interval:g} s for {args.duration:g} s wall")
        print(f"  ticks {real['ticks']}, readings {real['generated']:,}, sent {real['sent']:,}")
        print(f"  stored in S3: {stored:,} records in {objects:,} objects")
        print(f"  every sent record stored: {'yes' if stored == real['sent'] else 'NO'}")
        print(
            f"  readings/s generated: {real['generated'] / real['loop_wall_s']:,.0f} (needed {needed:,.0f})"
        )
        print(
            f"  records/s uploaded: {real['sent'] / real['loop_wall_s']:,.0f} (the rest held by offline cars)"
        )
        print(f"  worst tick lag: {real['max_lag_s']:.2f} s of a {args.interval:g} s interval")
        cpu, wall = real["process_cpu_s"], real["process_wall_s"]
        print(f"  simulator CPU: {cpu:.1f} s over {wall:.1f} s wall = {cpu_share:.1%} of one core")
        print(f"  keeps up with real time: {'yes' if keeps_up else 'NO'}")

        reset_moto(settings.endpoint_url or "")
        provision(read_stack_spec(settings), client_factory(settings))
        cap = _run_cli(port, [*fleet, "--ticks", str(args.capacity_ticks), "--speed", "0"])
        rate = cap["generated"] / cap["loop_wall_s"]
        print(f"capacity: {args.capacity_ticks} ticks at --speed 0 with uploads: {rate:,.0f} records/s")
        print(f"  baseline (real time needs): {needed:,.0f} records/s; ratio {rate / needed:.1f}x")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
