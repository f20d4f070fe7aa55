"""``local up|status|reset|wait``: the embedded local AWS stack."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

from fleetota_core.errors import ConfigurationError
from fleetota_core.local.lifecycle import describe_stack, reset_stack, run_local_stack, wait_until_ready
from fleetota_core.local.stack_spec import REPO_ROOT

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
    reset = commands.add_parser("reset", help="empty all data; keep the resources")
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
    simulator: list[subprocess.Popen[bytes]] = []

    def start_demo_fleet() -> None:
        if not args.demo_fleet:
            return
        if not (REPO_ROOT / "simulator" / "__main__.py").exists():
            print(
                "warning: --demo-fleet ignored: this checkout has no `python -m simulator`", file=sys.stderr
            )
            return
        simulator.append(
            subprocess.Popen(
                [sys.executable, "-m", "simulator", "--vehicles", str(args.demo_fleet)], cwd=REPO_ROOT
            )
        )

    try:
        run_local_stack(settings, stop, on_ready=start_demo_fleet)
    finally:
        for process in simulator:
            process.terminate()
            process.wait(timeout=10)
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
    return 0 if description["provisioned"] else 1


def reset_command(args: argparse.Namespace, settings: Settings) -> int:
    _local_only(settings)
    print(f"local stack at {settings.endpoint_url}: {reset_stack(settings)}")
    return 0


def wait_command(args: argparse.Namespace, settings: Settings) -> int:
    _local_only(settings)
    wait_until_ready(settings, timeout=args.timeout)
    print(f"local stack ready at {settings.endpoint_url}")
    return 0
