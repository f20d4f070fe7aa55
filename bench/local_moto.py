"""The local stack's moto server (or plain moto) in a process of its own, for the benchmarks.

``start_moto`` as ``local up`` runs it (the speedups, one DynamoDB write at a time) and, given a
state directory, the state snapshot every ``Settings().snapshot_interval_s`` that ``local up`` takes
too (it pauses requests while it pickles). A process of its own, so the benchmark's clients get the
GIL alone.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from fleetota_core.local.server import probe_endpoint

ROOT = Path(__file__).resolve().parents[1]
SERVE = """
import pathlib, sys, threading
from fleetota_core.local.server import start_moto
snapshots = None
if len(sys.argv) > 2:
    from fleetota_core.local.persistence import Snapshotter
    from fleetota_core.settings import Settings
    state = pathlib.Path(sys.argv[2]) / "local-state.bin"
    snapshots = Snapshotter(state, Settings().snapshot_interval_s)
start_moto("127.0.0.1", int(sys.argv[1]), wrap=snapshots.wrap if snapshots else None)
if snapshots:
    snapshots.start()
threading.Event().wait()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_local_moto(
    port: int, state_dir: Path | None = None, timeout_s: float = 60.0
) -> subprocess.Popen[bytes]:
    """The local stack's moto on ``127.0.0.1:port``, answering as moto within ``timeout_s``; with
    ``state_dir``, snapshotting its state there as ``local up`` does."""
    command = [sys.executable, "-c", SERVE, str(port), *([str(state_dir)] if state_dir else [])]
    return _started(command, port, timeout_s)


def start_plain_moto(port: int, timeout_s: float = 60.0) -> subprocess.Popen[bytes]:
    """``python -m moto.server`` on ``127.0.0.1:port``: moto without the local stack's changes."""
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return _started(command, port, timeout_s)


def _started(command: list[str], port: int, timeout_s: float) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + timeout_s
    while probe_endpoint(f"http://127.0.0.1:{port}") != "moto":
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise SystemExit(f"the moto server did not start within {timeout_s:g} s")
        time.sleep(0.2)
    return server
