"""``python -m simulator``: run a simulated fleet that uploads telemetry batches.

Examples::

    python -m simulator --vehicles 100 --interval 60
    python -m simulator --vehicles 1000 --interval 10 --speed 60 --duration 120
    python -m simulator --vehicles 100 --ticks 10 --seed 7 --out /tmp/fleet
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetota_core.errors import FleetOTAError
from simulator.change_hint import assume_reported
from simulator.fleet import FLEET_SHARE, generate_fleet, read_private_keys, write_fleet_file
from simulator.health import ReleaseFaults
from simulator.job_listener import add_ota_fault_arguments
from simulator.progress import Progress
from simulator.runner import run
from simulator.simulation import MAX_OUTBOX, FaultProfile, FleetSimulation
from simulator.uploader import BatchUploader, DirectorySink, S3Sink
from simulator.vehicle_keys import assign_keys, register_fleet

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from simulator.uploader import BatchSink
    from simulator.vehicle import SimVehicle

# --out runs start at a fixed epoch derived from the seed, so equal seeds give equal bytes.
_SEEDED_EPOCH = datetime(2026, 1, 5, tzinfo=UTC).timestamp()  # a Monday


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _bad_release(text: str) -> str:
    try:
        ReleaseFaults().add(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def release_faults(values: Sequence[str] | None) -> ReleaseFaults:
    faults = ReleaseFaults()
    for text in values or ():
        faults.add(text)
    return faults


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m simulator", description=__doc__.splitlines()[0])
    p.add_argument("--vehicles", type=_positive(int), default=100, help="fleet size (default 100)")
    p.add_argument("--interval", type=_positive(float), default=60.0, help="seconds between readings")
    p.add_argument("--ticks", type=_positive(int), help="stop after N intervals")
    p.add_argument("--duration", type=_positive(float), help="stop after S wall-clock seconds")
    p.add_argument(
        "--speed",
        type=_non_negative,
        default=None,
        help="simulated seconds per wall second (60: an hour a minute; 0: as fast as possible); "
        "default 1, or 0 with --out (give --speed 1 to write files in real time)",
    )
    p.add_argument("--seed", type=int, help="same seed, same fleet and records (default: random)")
    p.add_argument("--batch-size", type=_positive(int), default=1000, help="most records per object")
    p.add_argument(
        "--flush-seconds",
        type=_positive(float),
        default=2.0,
        help="longest a reading waits before its upload, in wall seconds (default 2; not with --speed 0)",
    )
    p.add_argument(
        "--outbox-readings",
        type=_positive(int),
        default=MAX_OUTBOX,
        help="readings each vehicle keeps while it cannot upload (offline, or the backend unreachable); "
        f"past that the oldest are dropped and counted (default {MAX_OUTBOX:,})",
    )
    p.add_argument("--out", type=Path, help="write the batch files under DIR instead of uploading to S3")
    p.add_argument("--start", help="simulated start time, ISO 8601 (default: now; with --out, from the seed)")
    p.add_argument(
        "--wall-clock",
        action="store_true",
        help="readings carry the wall-clock time while the vehicles live --speed times faster "
        "(a time-compressed demo a backend with a clock-skew check accepts)",
    )
    p.add_argument(
        "--fleet-share",
        type=_rate,
        default=FLEET_SHARE,
        help=f"share of depot-based fleet vehicles; the rest commute (default {FLEET_SHARE})",
    )
    p.add_argument("--fleet-file", type=Path, help="write the provisioned fleet (VIN, model, ...) as JSON")
    faults = p.add_argument_group("faults")
    faults.add_argument(
        "--offline-rate", type=_rate, default=None, help="share of time each vehicle spends in outages"
    )
    faults.add_argument("--outage-minutes", type=_positive(float), default=30.0, help="mean outage length")
    faults.add_argument(
        "--install-failure-rate", type=_rate, default=None, help="share of OTA installs that fail"
    )
    faults.add_argument(
        "--fault-rate",
        type=_rate,
        default=0.0,
        help="shorthand: sets --offline-rate and --install-failure-rate where those are not given",
    )
    faults.add_argument(
        "--bad-release",
        action="append",
        type=_bad_release,
        metavar="VERSION:EFFECT",
        help="vehicles running VERSION suffer EFFECT (repeatable): parked_drain=FACTOR (3: 3x parked "
        "battery drain), dtc=CODE@PCT (fault code CODE at PCT %% per hour, e.g. dtc=P0A80@5), "
        "reboot=PCT or link_drop=PCT (unexpected reboots or connectivity drops, PCT %% per hour)",
    )
    p.add_argument(
        "--fleet-known",
        action="store_true",
        help="the platform already holds this fleet's state (e.g. a run just before with the same "
        "seed): first readings are flagged changed only if they changed, not all at start",
    )
    p.add_argument("--no-ota", action="store_true", help="do not listen for OTA job notifications")
    p.add_argument(
        "--vehicle-state",
        type=Path,
        help="where vehicles keep their installed firmware and OTA history across restarts "
        "(default: vehicle-ota.json in FLEETOTA_STATE_DIR, .fleetota/)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress line")
    add_ota_fault_arguments(p)
    return p


def _start_time(args: argparse.Namespace, seed: int) -> float:
    if args.start:
        try:
            at = datetime.fromisoformat(args.start)
        except ValueError as exc:
            raise FleetOTAError(f"--start {args.start!r} is not an ISO 8601 time") from exc
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    if args.out is not None:
        return _SEEDED_EPOCH + (seed % 364) * 86_400
    return round(time.time(), 3)


def _speed(args: argparse.Namespace) -> float:
    # Files are written in simulated time only: nobody waits on a clock that nothing downstream reads.
    if args.speed is not None:
        return float(args.speed)
    return 0.0 if args.out is not None else 1.0


def _backend(args: argparse.Namespace) -> tuple[BatchSink, Any, Any]:
    """Where batches go, plus the client factory and resource names (None, None with --out)."""
    if args.out is not None:
        return DirectorySink(args.out), None, None
    # Imported here so --out runs need no AWS configuration at all.
    from fleetota_core.adapters.clients import client_factory
    from fleetota_core.adapters.resources import resolve_resources
    from fleetota_core.adapters.telemetry_store import TelemetryStore
    from fleetota_core.settings import Settings

    settings = Settings()
    clients = client_factory(settings)
    resources = resolve_resources(settings, clients)
    store = TelemetryStore(resources.telemetry_bucket, clients.s3)
    store.check()
    return S3Sink(store), clients, resources


def _job_listener(
    args: argparse.Namespace, clients: Any, resources: Any, run_id: str, seed: int, stamp: Any
) -> Any:
    """The vehicles' OTA client, subscribed to job notifications (S3 mode only, unless --no-ota)."""
    if clients is None or args.no_ota:
        return None
    from fleetota_core.settings import Settings
    from simulator.job_listener import open_job_listener, ota_faults

    faults = ota_faults(args)
    state_file = args.vehicle_state or Settings().state_dir / "vehicle-ota.json"
    return open_job_listener(
        clients,
        resources,
        run_id,
        faults,
        seed=seed,
        stamp=stamp,
        state_file=state_file,
        consent_rate=getattr(args, "consent_rate", None),
    )


def _stamp(args: argparse.Namespace, start: float) -> Callable[[float], float] | None:
    """With --wall-clock, simulated time -> wall time: the run's wall start plus elapsed / speed."""
    if not args.wall_clock or args.speed <= 0:
        return None
    wall0 = time.time()
    return lambda t: wall0 + (t - start) / args.speed


def simulate(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    fleet = generate_fleet(args.vehicles, seed, args.fleet_share)
    # The vehicles keep the keys an earlier run of this fleet wrote; new vehicles get new keys.
    assign_keys(fleet, read_private_keys(args.fleet_file) if args.fleet_file is not None else None)
    if args.fleet_file is not None:
        write_fleet_file(args.fleet_file, fleet, seed)  # before any upload: the fleet as provisioned
    sink, clients, resources = _backend(args)
    if clients is not None:
        register_fleet(clients, resources, fleet)  # the registry knows every vehicle before it reports
    # The clock starts once the fleet is provisioned (10,000 vehicles take seconds): a start taken
    # before would date every reading that much in the past.
    start = _start_time(args, seed)
    run_id = hashlib.sha256(f"{seed}:{start}".encode()).hexdigest()[:8]
    stamp = _stamp(args, start)
    listener = _job_listener(args, clients, resources, run_id, seed, stamp)
    try:
        return _simulate(args, seed, start, sink, run_id, listener, fleet, stamp)
    finally:
        if listener is not None:
            listener.close()


def _simulate(
    args: argparse.Namespace,
    seed: int,
    start: float,
    sink: BatchSink,
    run_id: str,
    listener: Any,
    fleet: list[SimVehicle],
    stamp: Callable[[float], float] | None,
) -> int:
    uploader = BatchUploader(sink, args.batch_size, run_id)
    faults = FaultProfile(
        offline_rate=args.fault_rate if args.offline_rate is None else args.offline_rate,
        outage_minutes=args.outage_minutes,
        install_failure_rate=args.fault_rate
        if args.install_failure_rate is None
        else args.install_failure_rate,
    )
    sim = FleetSimulation(
        fleet, uploader, start=start, interval=args.interval, seed=seed, faults=faults,
        ota_client=listener, stamp=stamp, outbox_size=args.outbox_readings,
        release_faults=release_faults(args.bad_release),
    )  # fmt: skip
    if args.fleet_known:
        assume_reported(fleet, random.Random(seed))
    stop = threading.Event()

    def on_stop(signum: int, frame: object) -> None:
        # Finish the tick in hand, flush and summarise; a second Ctrl-C aborts at once.
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)  # the dashboard stops the simulator with SIGTERM
    target = args.out if args.out is not None else "S3"
    print(f"simulating {args.vehicles} vehicles, seed {seed}, every {args.interval:g} s -> {target}")
    report = run(
        sim, speed=_speed(args), ticks=args.ticks, duration_s=args.duration, stop=stop,
        progress=Progress(quiet=args.quiet), on_idle=listener.on_idle if listener is not None else None,
        flush_s=args.flush_seconds,
    )  # fmt: skip
    uploader.flush(sim.stamp(sim.t))  # nothing should remain, but never leave a record behind
    # The final status line is the progress line's last update (run() forces it), not printed again here.
    print(
        f"done: {report.ticks} ticks in {report.wall_s:.1f} s wall, {report.cpu_s:.1f} s CPU; "
        f"{summary(sim, uploader)}; max lag {report.max_lag_s:.2f} s"
        + (" (stopped by a signal)" if report.interrupted else "")
    )
    return 0


def summary(sim: FleetSimulation, uploader: BatchUploader) -> str:
    """Where every reading went: sent, held by the vehicles, dropped from a full outbox, or still
    awaiting an upload; then how many went up late and how often the backend was unreachable."""
    # A stop mid-interval leaves its later phase slices unread, so readings taken, not ticks x fleet.
    text = (
        f"{sim.readings:,} readings = {uploader.records_sent:,} sent + {sim.held:,} held by vehicles"
        f" + {sim.dropped:,} dropped (oldest first, outbox {sim.outbox_size:,} per vehicle)"
    )
    if uploader.buffer:
        text += f" + {len(uploader.buffer):,} awaiting upload (backend failing)"
    text += f"; {sim.forwarded + uploader.records_late:,} uploaded late"
    if uploader.outages:
        text += (
            f"; backend unreachable {uploader.outages:,} time(s), "
            f"{uploader.failed_uploads:,} failed uploads, {sim.held_for_backend:,} readings held meanwhile"
        )
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return simulate(args)
    except FleetOTAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # The contract is one line, never a traceback; FLEETOTA_DEBUG=1 shows the traceback.
        if os.environ.get("FLEETOTA_DEBUG"):
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
