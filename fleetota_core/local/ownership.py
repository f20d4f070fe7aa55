"""Which process owns the local stack of a state folder (``.fleetota/local-stack.pid``), and stopping it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fleetota_core.errors import BackendUnavailableError, ConflictError
from fleetota_core.local.snapshot_file import write_atomic

if TYPE_CHECKING:
    from pathlib import Path

PID_NAME = "local-stack.pid"


@dataclass(frozen=True)
class StackOwner:
    """The ``local up`` process that started the moto server and keeps its snapshots."""

    pid: int
    endpoint: str


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) still answers signal 0.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read_owner(state_dir: Path) -> StackOwner | None:
    """The live owner recorded in ``state_dir``; None when there is none or it has exited."""
    try:
        raw = json.loads((state_dir / PID_NAME).read_text())
        owner = StackOwner(pid=int(raw["pid"]), endpoint=str(raw["endpoint"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return owner if process_alive(owner.pid) else None


def claim(state_dir: Path, endpoint: str) -> None:
    """Record this process as the owner; refuse if another live process owns ``state_dir``."""
    other = read_owner(state_dir)
    if other is not None and other.pid != os.getpid():
        raise ConflictError(
            f"another local stack (pid {other.pid}, {other.endpoint}) keeps its state in {state_dir}; "
            "stop it with `fleetota local stop` or set FLEETOTA_STATE_DIR"
        )
    payload = {"pid": os.getpid(), "endpoint": endpoint}
    write_atomic(state_dir / PID_NAME, json.dumps(payload).encode())


def release(state_dir: Path) -> None:
    owner = read_owner(state_dir)
    if owner is None or owner.pid == os.getpid():
        with contextlib.suppress(OSError):
            (state_dir / PID_NAME).unlink()


def stop_owner(state_dir: Path, timeout: float = 60.0) -> StackOwner | None:
    """SIGTERM the owner (it writes a final snapshot, then exits) and wait; None if none is running.

    Raises
    ------
    BackendUnavailableError
        The owner is still running after ``timeout`` seconds.
    """
    owner = read_owner(state_dir)
    if owner is None:
        return None
    os.kill(owner.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while process_alive(owner.pid):
        if time.monotonic() >= deadline:
            raise BackendUnavailableError(
                f"the local stack (pid {owner.pid}) did not stop within {timeout:g} s"
            )
        time.sleep(0.2)
    release(state_dir)
    return owner
