"""Starting, finding, waiting for, stopping and resetting the local stack (``local up|status|stop|...``)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.clients import client_factory
from fleetota_core.errors import BackendUnavailableError
from fleetota_core.local import ownership
from fleetota_core.local.fleet_registry import reprovision_simulated_fleet
from fleetota_core.local.provision import missing_resources, provision
from fleetota_core.local.reset import empty_data
from fleetota_core.local.server import control_request, probe_endpoint, reset_moto, start_moto
from fleetota_core.local.snapshot_file import SNAPSHOT_NAME, remove_snapshots
from fleetota_core.local.stack_spec import REPO_ROOT, read_stack_spec

if TYPE_CHECKING:
    import threading
    from pathlib import Path

    from fleetota_core.local.persistence import Snapshotter
    from fleetota_core.local.stack_spec import StackSpec
    from fleetota_core.settings import Settings

logger = logging.getLogger(__name__)
DEFAULT_LOG_PATH = REPO_ROOT / ".fleetota" / "local-stack.log"


@dataclass(frozen=True)
class LocalStackStatus:
    """What answers at the local endpoint and whether the stack's resources exist there."""

    endpoint: str
    backend: str | None  # "moto", "localstack", "aws-compatible" or None (nothing listening)
    missing: list[str] = field(default_factory=list)
    started: bool = False  # this call started the stack (rather than attaching to a running one)
    pid: int | None = None
    log_path: str | None = None

    @property
    def running(self) -> bool:
        return self.backend is not None

    @property
    def ready(self) -> bool:
        return self.running and not self.missing

    def __str__(self) -> str:
        if not self.running:
            return f"no local stack at {self.endpoint}"
        how = f"started (pid {self.pid}, log {self.log_path})" if self.started else "attached"
        state = "ready" if self.ready else f"missing {len(self.missing)} resource(s)"
        return f"{self.backend} at {self.endpoint}, {how}, {state}"


def local_status(settings: Settings, spec: StackSpec | None = None) -> LocalStackStatus:
    endpoint = settings.endpoint_url or ""
    backend = probe_endpoint(endpoint)
    if backend is None:
        return LocalStackStatus(endpoint=endpoint, backend=None)
    spec = spec or read_stack_spec(settings)
    return LocalStackStatus(
        endpoint=endpoint, backend=backend, missing=missing_resources(spec, client_factory(settings))
    )


def describe_stack(settings: Settings) -> dict[str, Any]:
    """The endpoint and every resource name, as ``local status --json`` prints them."""
    spec = read_stack_spec(settings)
    status = local_status(settings, spec)
    return {
        "endpoint": status.endpoint,
        "backend": status.backend,
        "running": status.running,
        "provisioned": status.ready,
        "missing": status.missing,
        "stack": spec.stack,
        "region": spec.region,
        "resources": spec.resources.as_dict(),
        "buckets": [b.name for b in spec.buckets],
        "queues": {q.name: q.url for q in spec.queues},
        "tables": [t.name for t in spec.tables],
        "topics": dict(spec.topics),
        "keys": list(spec.signing_keys),
        "functions": [f.name for f in spec.functions],
        "schedules": {s.name: s.expression for s in spec.schedules},
        "alarms": [a["AlarmName"] for a in spec.alarms],
        "persistence": persistence_status(settings, running=status.running),
    }


def persistence_status(settings: Settings, *, running: bool | None = None) -> dict[str, Any] | None:
    """The running stack's snapshot status (with a ``warning`` if it started empty), or the saved file's.

    None when the endpoint is not a FleetOTA ``local up`` (LocalStack, a bare moto) and nothing is saved.
    """
    endpoint = settings.endpoint_url or ""
    if running is None:
        running = probe_endpoint(endpoint) is not None
    live = control_request(endpoint, "persistence", timeout=5) if running else None
    if live is not None:
        return live
    path = settings.state_dir / SNAPSHOT_NAME
    if not path.exists():
        return None
    return {"path": str(path), "saved": True, "last_size": path.stat().st_size, "running": False}


def wait_until_ready(
    settings: Settings, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until the endpoint answers and is provisioned.

    Raises
    ------
    BackendUnavailableError
        After ``timeout`` seconds, or as soon as ``process`` (the stack being started) exits.
    """
    spec = read_stack_spec(settings)
    deadline = time.monotonic() + timeout
    status = local_status(settings, spec)
    while not status.ready:
        if process is not None and process.poll() is not None:
            raise BackendUnavailableError(
                f"the local stack exited with code {process.returncode} before it was ready; "
                f"see {DEFAULT_LOG_PATH}"
            )
        if time.monotonic() >= deadline:
            raise BackendUnavailableError(f"the local stack is not ready after {timeout:g} s: {status}")
        time.sleep(0.3)
        status = local_status(settings, spec)


def ensure_running(
    settings: Settings, timeout: float = 90.0, log_path: Path | None = None
) -> LocalStackStatus:
    """Attach to a ready local stack, or start ``local up`` as a detached process and wait for it.

    Meant to be called once per dashboard server process (inside ``st.cache_resource``).
    """
    status = local_status(settings)
    if status.ready:
        return status
    if status.running:
        # Another process may be provisioning right now; give it a moment before starting our own.
        try:
            wait_until_ready(settings, timeout=10)
            return local_status(settings)
        except BackendUnavailableError:
            logger.info(
                "endpoint %s answers but is not provisioned; starting the local stack", status.endpoint
            )
    log = log_path or DEFAULT_LOG_PATH
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "FLEETOTA_MODE": "local",
        "FLEETOTA_LOCAL_HOST": settings.local_host,
        "FLEETOTA_LOCAL_PORT": str(settings.local_port),
        "FLEETOTA_REGION": settings.region,
        "FLEETOTA_STACK": settings.stack_name,
        # Absolute, as the stack runs in the repository while the dashboard may run elsewhere.
        "FLEETOTA_STATE_DIR": str(settings.state_dir.resolve()),
        "FLEETOTA_SNAPSHOT_INTERVAL_S": str(settings.snapshot_interval_s),
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "fleetota_core", "local", "up", "--port", str(settings.local_port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,  # outlives the dashboard's reruns and its process group signals
        )
    wait_until_ready(settings, timeout=timeout, process=process)
    ready = local_status(settings)
    return LocalStackStatus(
        endpoint=ready.endpoint,
        backend=ready.backend,
        missing=ready.missing,
        started=True,
        pid=process.pid,
        log_path=str(log),
    )


def start_local_stack(settings: Settings) -> str:
    """Attach to the local AWS endpoint, starting it when none is listening; returns what happened."""
    return str(ensure_running(settings))


def reset_stack(settings: Settings) -> str:
    """Empty every table, bucket and queue, keep the resources, wipe the saved state; returns what it did.

    A running ``local up`` replaces its snapshot with the empty stack at once. With no stack running,
    the saved state under ``settings.state_dir`` is deleted. An endpoint that ``local up`` did not
    start (LocalStack, another moto) saves no state here, so the state folder is left alone.
    """
    endpoint = settings.endpoint_url or ""
    backend = probe_endpoint(endpoint)
    if backend is None:
        wiped = remove_snapshots(settings.state_dir)
        if not wiped:
            return f"no local stack running; no saved state in {settings.state_dir}"
        return f"no local stack running; saved state wiped ({len(wiped)} file(s) in {settings.state_dir})"
    spec = read_stack_spec(settings)
    clients = client_factory(settings)
    if backend == "moto":
        # moto's own reset also clears metrics and alarm states; provisioning restores the resources.
        reset_moto(endpoint)
        provision(spec, clients)
        done = "moto reset and provisioned again"
    else:
        empty_data(spec, clients)
        provision(spec, clients)
        done = "tables, buckets and queues emptied"
    # A running simulator keeps its fleet and keys; the registry must know them again.
    registered = reprovision_simulated_fleet(settings.state_dir, clients, spec.resources)
    if registered:
        done += f"; the simulator's {registered} vehicles provisioned again"
    # The stack's own snapshot now holds the empty stack, whatever folder it keeps it in.
    persisted = control_request(endpoint, "snapshot")
    if persisted is None:
        return f"{done}; this endpoint saves no state"
    return f"{done}; saved state replaced by the empty stack ({persisted['path']})"


def stop_stack(settings: Settings, timeout: float = 60.0) -> str:
    """``local stop``: stop the ``local up`` that owns ``settings.state_dir``; it writes a final snapshot."""
    owner = ownership.stop_owner(settings.state_dir, timeout=timeout)
    if owner is not None:
        where = f"{owner.endpoint} (pid {owner.pid})"
        return f"stopped the local stack at {where}; state saved in {settings.state_dir}"
    backend = probe_endpoint(settings.endpoint_url or "")
    if backend is None:
        return f"no local stack is running (nothing answers at {settings.endpoint_url})"
    raise BackendUnavailableError(
        f"the {backend} endpoint at {settings.endpoint_url} was not started by `fleetota local up` with the "
        f"state folder {settings.state_dir}; stop it where it was started"
    )


def run_local_stack(settings: Settings, stop: threading.Event, *, on_ready: Any = None) -> None:
    """``local up``: start or attach to the endpoint, provision, run the runtime until ``stop`` is set."""
    from fleetota_core.local.runtime import LocalRuntime

    endpoint = settings.endpoint_url or ""
    backend = probe_endpoint(endpoint)
    server = None
    snapshots: Snapshotter | None = None
    if backend is None:
        snapshots = _restore(settings)
        server = start_moto(settings.local_host, settings.local_port, wrap=snapshots.wrap)
        ownership.claim(settings.state_dir, endpoint)
        backend = "moto"
        print(f"started moto on {endpoint}", flush=True)
    else:
        print(f"attaching to the {backend} endpoint already listening on {endpoint}", flush=True)
        print("its state is saved (or not) by the process that started it", flush=True)
    try:
        spec = read_stack_spec(settings)
        clients = client_factory(settings)
        provision(spec, clients)
        runtime = LocalRuntime(settings, clients=clients, spec=spec)
        runtime.start()
        if snapshots is not None:
            snapshots.start()
        print(f"local stack ready: {endpoint} (stack {spec.stack}); Ctrl-C to stop", flush=True)
        if on_ready is not None:
            on_ready()
        try:
            while not stop.wait(0.5):  # a timed wait lets signal handlers run promptly
                pass
        finally:
            print("stopping the local Lambda runtime", flush=True)
            runtime.stop()
    finally:
        if snapshots is not None:
            snapshots.stop()  # the final snapshot, after the runtime's last writes
            status = snapshots.status
            saved = f"{status.path} ({status.last_size or 0:,} bytes)"
            print(f"saved the local stack's state: {saved}", flush=True)
        if server is not None:
            server.stop()
            ownership.release(settings.state_dir)
            print("stopped moto", flush=True)


def _restore(settings: Settings) -> Snapshotter:
    from fleetota_core.local.persistence import Snapshotter

    snapshots = Snapshotter(settings.state_dir / SNAPSHOT_NAME, settings.snapshot_interval_s)
    owner = ownership.read_owner(settings.state_dir)
    if owner is not None and owner.pid != os.getpid():
        raise BackendUnavailableError(
            f"another local stack (pid {owner.pid}, {owner.endpoint}) keeps its state in "
            f"{settings.state_dir}; stop it with `fleetota local stop` or set FLEETOTA_STATE_DIR"
        )
    outcome = snapshots.restore()
    print(f"local state: {outcome}", flush=True)
    if snapshots.status.warning:
        print(f"WARNING: {snapshots.status.warning}", flush=True)
    return snapshots
