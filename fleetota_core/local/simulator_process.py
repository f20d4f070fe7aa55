"""Start, stop and watch the fleet simulator (``python -m simulator``) as a background process.

State lives in ``.fleetota/`` (pid file, options, log) so every dashboard session, and a restarted
server, sees the same simulator.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetota_core.errors import ConflictError, ValidationError
from fleetota_core.local.ownership import process_alive

if TYPE_CHECKING:
    from fleetota_core.settings import Settings

STATE_DIR = Path(".fleetota")
PID_FILE = STATE_DIR / "simulator.pid"
OPTIONS_FILE = STATE_DIR / "simulator.json"
LOG_FILE = STATE_DIR / "simulator.log"
FLEET_FILE = STATE_DIR / "fleet.json"  # the simulator's fleet as provisioned, with its private keys
VEHICLE_STATE_FILE = STATE_DIR / "vehicle-ota.json"  # simulator/ota_memory.py
MAX_VEHICLES = 100_000
REPO_ROOT = Path(__file__).resolve().parents[2]  # where `python -m simulator` is importable from


@dataclass(frozen=True)
class SimulatorOptions:
    vehicles: int = 100
    interval_s: float = 5.0
    speed: float = 1.0
    fault_rate: float = 0.0
    seed: int | None = None
    extra_args: tuple[str, ...] = field(default_factory=tuple)
    # Time compression for demos: readings carry wall time while vehicles live ``speed`` times faster.
    wall_clock: bool = False
    start: str | None = None  # simulated start time, ISO 8601 (default: now)
    fleet_share: float | None = None  # depot-based share of the fleet (default: the simulator's)

    def validate(self) -> None:
        if not 1 <= self.vehicles <= MAX_VEHICLES:
            raise ValidationError(f"fleet size must be 1-{MAX_VEHICLES:,}, got {self.vehicles}")
        if not 0.1 <= self.interval_s <= 3600:
            raise ValidationError(f"interval must be 0.1-3600 s, got {self.interval_s}")
        if not 0.1 <= self.speed <= 1000:
            raise ValidationError(f"speed must be 0.1-1000x, got {self.speed}")
        if not 0 <= self.fault_rate < 1:
            raise ValidationError(f"fault rate must be at least 0 and below 1, got {self.fault_rate}")
        if self.fleet_share is not None and not 0 <= self.fleet_share < 1:
            raise ValidationError(f"fleet share must be at least 0 and below 1, got {self.fleet_share}")

    def argv(self) -> list[str]:
        args = [
            "--vehicles",
            str(self.vehicles),
            "--interval",
            str(self.interval_s),
            "--speed",
            str(self.speed),
            "--fault-rate",
            str(self.fault_rate),
        ]
        if self.seed is not None:
            args += ["--seed", str(self.seed)]
        if self.wall_clock:
            args.append("--wall-clock")
        if self.start:
            args += ["--start", self.start]
        if self.fleet_share is not None:
            args += ["--fleet-share", str(self.fleet_share)]
        return args + list(self.extra_args)


@dataclass(frozen=True)
class SimulatorStatus:
    running: bool
    pid: int | None
    options: dict | None
    started_at: float | None
    log_tail: list[str]


def _tail(path: Path, lines: int) -> list[str]:
    if not path.exists():
        return []
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - 16_384))
        text = fh.read().decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if line.strip()][-lines:]


def simulator_status(state_dir: Path = STATE_DIR, log_lines: int = 12) -> SimulatorStatus:
    """Whether the simulator runs, with what options, and its latest progress lines."""
    pid_file, options_file = state_dir / PID_FILE.name, state_dir / OPTIONS_FILE.name
    pid = int(pid_file.read_text().strip()) if pid_file.exists() else None
    running = pid is not None and process_alive(pid)
    options = json.loads(options_file.read_text()) if options_file.exists() else None
    started = pid_file.stat().st_mtime if pid_file.exists() else None
    return SimulatorStatus(
        running, pid if running else None, options, started, _tail(state_dir / LOG_FILE.name, log_lines)
    )


def start_simulator(options: SimulatorOptions, settings: Settings, state_dir: Path = STATE_DIR) -> int:
    """Start ``python -m simulator`` against the same backend as the dashboard; returns its pid."""
    options.validate()
    if simulator_status(state_dir).running:
        raise ConflictError("the simulator is already running; stop it before starting another")
    state_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # The child reads its settings from FLEETOTA_* like every entrypoint; pass this backend's explicitly.
    env.update({"FLEETOTA_MODE": settings.mode, "FLEETOTA_REGION": settings.region})
    if settings.is_local:
        env.update(
            {"FLEETOTA_LOCAL_HOST": settings.local_host, "FLEETOTA_LOCAL_PORT": str(settings.local_port)}
        )
    if settings.stack:
        env["FLEETOTA_STACK"] = settings.stack
    with (state_dir / LOG_FILE.name).open("ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(options.argv())}\n".encode())
        log.flush()
        fleet_file = ["--fleet-file", str((state_dir / FLEET_FILE.name).resolve())]
        # Vehicles keep their installed firmware and anti-replay history across simulator restarts.
        fleet_file += ["--vehicle-state", str((state_dir / VEHICLE_STATE_FILE.name).resolve())]
        process = subprocess.Popen(
            [sys.executable, "-m", "simulator", *options.argv(), *fleet_file],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=REPO_ROOT,
            start_new_session=True,  # outlives a dashboard rerun; stopped by pid below
        )
    (state_dir / PID_FILE.name).write_text(str(process.pid))
    (state_dir / OPTIONS_FILE.name).write_text(json.dumps(asdict(options)))
    return process.pid


def read_fleet_file(state_dir: Path = STATE_DIR) -> list[dict[str, Any]] | None:
    """The vehicles the simulator provisioned (its ``--fleet-file``), or None when it never wrote one."""
    path = state_dir / FLEET_FILE.name
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # being replaced or damaged: the counts fall back to what reported
    vehicles = data.get("vehicles") if isinstance(data, dict) else None
    if not isinstance(vehicles, list):
        return None
    return [v for v in vehicles if isinstance(v, dict) and v.get("vin")]


def stop_simulator(state_dir: Path = STATE_DIR, timeout_s: float = 10.0) -> bool:
    """Stop the simulator this dashboard started; False when none was running."""
    status = simulator_status(state_dir)
    if not status.running or status.pid is None:
        (state_dir / PID_FILE.name).unlink(missing_ok=True)
        return False
    os.kill(status.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process_alive(status.pid):
        time.sleep(0.1)
    if process_alive(status.pid):
        os.kill(status.pid, signal.SIGKILL)
    (state_dir / PID_FILE.name).unlink(missing_ok=True)
    return True
