"""``local up|status|stop|reset|wait``: the embedded local AWS stack."""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import TYPE_CHECKING, Any

from fleetota_core.composition import ports_for
from fleetota_core.errors import ConfigurationError, FleetOTAError
from fleetota_core.local.demo import demo_fleet_options, ensure_demo_release, wait_for_fleet_file
from fleetota_core.local.lifecycle import (
    describe_stack,
    reset_stack,
    run_local_stack,
    stop_stack,
    wait_until_ready,
)
from fleetota_core.local.simulator_process import (
    simulator_status,
    start_simulator,
    stop_simulator,
)

if TYPE_CHECKING:
    import argparse

    from fleetota_core.settings import Settings


def register(subparsers: Any) -> None:
    local = subparsers.add_parser("local", help="run and inspect the embedded local AWS stack")
    commands = local.add_subparsers(dest="local_command", metavar="ACTION", required=True)
    up = commands.add_parser(
        "up",
        help="start moto on 127.0.0.1 (or attach to a running endpoint), provision, run the Lambda runtime",
    )
    up.add_argument("--port", type=int, help="endpoint port (default FLEETOTA_LOCAL_PORT or 4566)")
    up.add_argument("--demo-fleet", type=int, metavar="N", help="also run the simulator with N vehicles")
    up.set_defaults(func=up_command)
    status = commands.add_parser("status", help="show the endpoint and every resource name")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=status_command)
    stop = commands.add_parser("stop", help="stop the stack `local up` started, saving its state first")
    stop.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default 60)")
    stop.set_defaults(func=stop_command)
    reset = commands.add_parser(
        "reset", help="empty all data and wipe the saved state (.fleetota/); keep the resources"
    )
    reset.set_defaults(func=reset_command)
    wait = commands.add_parser("wait", help="wait until the endpoint answers and is provisioned")
    wait.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    wait.set_defaults(func=wait_command)


def _with_port(settings: Settings, port: int | None) -> Settings:
    return settings.model_copy(update={"local_port": port}) if port else settings


def _local_only(settings: Settings) -> None:
    if not settings.is_local:
        raise ConfigurationError("`local` commands need FLEETOTA_MODE=local (it is 'aws')")


def up_command(args: argparse.Namespace, settings: Settings) -> int:
    _local_only(settings)
    settings = _with_port(settings, args.port)
    # The runtime reports alarm changes and handler failures through logging; show them in the log.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    state_dir = settings.state_dir
    started: list[int] = []

    def start_demo_fleet() -> None:
        if not args.demo_fleet:
            return
        # The dashboard's simulator controls: the dashboard then sees this fleet and starts no second one.
        options = demo_fleet_options(args.demo_fleet)
        try:
            started.append(start_simulator(options, settings, state_dir))
            print(
                f"demo fleet: {args.demo_fleet} simulated vehicles, time {options.speed:g}x faster "
                f"(log {state_dir / 'simulator.log'})",
                flush=True,
            )
        except FleetOTAError as exc:
            print(f"demo fleet not started: {exc}", flush=True)
        try:
            release = ensure_demo_release(ports_for(settings), wait_for_fleet_file(state_dir))
            if release is not None:
                print(f"demo release {release.version} published for {', '.join(release.manifest.models)}")
        except FleetOTAError as exc:
            print(f"demo release not published: {exc}", flush=True)

    try:
        run_local_stack(settings, stop, on_ready=start_demo_fleet)
    finally:
        if started and simulator_status(state_dir).pid in started:
            stop_simulator(state_dir)
    return 0


def status_command(args: argparse.Namespace, settings: Settings) -> int:
    _local_only(settings)
    description = describe_stack(settings)
    if args.json:
        print(json.dumps(description, indent=2))
    else:
        state = (
            "ready"
            if description["provisioned"]
            else ("running" if description["running"] else "not running")
        )
        print(
            f"endpoint  {description['endpoint']} ({description['backend'] or 'nothing listening'}, {state})"
        )
        for group in ("buckets", "queues", "tables", "topics", "keys", "functions", "schedules", "alarms"):
            names = description[group]
            print(f"{group:<9} {', '.join(names)}")
        if description["missing"]:
            print(f"missing   {', '.join(description['missing'])}")
        _print_persistence(description["persistence"])
    return 0 if description["provisioned"] else 1


def _print_persistence(persistence: dict[str, Any] | None) -> None:
    if persistence is None:
        print("state     not saved (this endpoint was not started by `local up`)")
        return
    if not persistence.get("running", True):
        print(f"state     saved in {persistence['path']} ({persistence['last_size']:,} bytes); stack stopped")
        return
    every = f"every {persistence['interval_s']:g} s"
    print(f"state     {persistence['path']}, {every}; {persistence['restored']}")
    if persistence.get("last_snapshot_at"):
        print(
            f"snapshot  {persistence['last_size']:,} bytes, requests paused "
            f"{persistence['last_pause_ms']} ms, written in {persistence['last_write_ms']} ms"
        )
    if persistence.get("last_error"):
        print(f"ERROR     the last snapshot failed: {persistence['last_error']}")
    if persistence.get("warning"):
        print(f"WARNING   {persistence['warning']}")


def stop_command(args: argparse.Namespace, settings: Settings) -> int:
    _local_only(settings)
    print(stop_stack(settings, timeout=args.timeout))
    return 0


def reset_command(args: argparse.Namespace, settings: Settings) -> int:
    _local_only(settings)
    print(f"local stack at {settings.endpoint_url}: {reset_stack(settings)}")
    return 0


def wait_command(args: argparse.Namespace, settings: Settings) -> int:
    _local_only(settings)
    wait_until_ready(settings, timeout=args.timeout)
    print(f"local stack ready at {settings.endpoint_url}")
    return 0
