"""Keeps a moto server's state across restarts: its in-memory backends, pickled to ``.fleetota/``.

Every ``interval_s`` seconds (if anything may have changed) the snapshotter pauses the server's
requests (:class:`~fleetota_core.local.server.SnapshotGate`), pickles the backends of
:data:`PERSISTED_SERVICES` to memory, lets requests continue, and only then writes the file
atomically. ``local up`` restores the file before the server answers its first request, so DynamoDB
items, S3 objects, queued messages, topics, rules, metrics, alarms and the KMS keys (same key ids,
same private keys, so earlier signatures still verify) come back as they were.
"""

from __future__ import annotations

import copyreg
import functools
import io
import logging
import pickle
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fleetota_core.local.server import SnapshotGate
from fleetota_core.local.snapshot_file import decode, encode, write_atomic

if TYPE_CHECKING:
    from pathlib import Path

logger = logging.getLogger(__name__)
# The services the local stack provisions or writes to (see provision.py and the runtime).
PERSISTED_SERVICES = ("cloudwatch", "dynamodb", "events", "kms", "logs", "s3", "sns", "sqs")
PICKLE_RETRIES = 3


@dataclass
class PersistenceStatus:
    """What ``local status`` and ``GET /_fleetota/persistence`` report."""

    path: str
    interval_s: float
    restored: str = "not restored yet"
    warning: str | None = None  # set when a snapshot could not be used: the stack started empty
    snapshots: int = 0
    last_snapshot_at: float | None = None
    last_size: int | None = None
    last_pause_ms: float | None = None  # requests waited this long (pickling under the gate)
    last_write_ms: float | None = None  # encode + fsync + rename, while requests run
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _private_key_from_pkcs8(der: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    return load_der_private_key(der, password=None)


def _reduce_private_key(key: Any) -> tuple[Any, tuple[bytes]]:
    from cryptography.hazmat.primitives import serialization

    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return _private_key_from_pkcs8, (der,)


@functools.cache
def _dispatch_table() -> dict[type, Any]:
    """copyreg reducers for what moto keeps but pickle refuses: locks and cryptography keys."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    table: dict[type, Any] = dict(copyreg.dispatch_table)
    # A restored lock starts released: no request is running while the snapshot is taken.
    table[type(threading.Lock())] = lambda _: (threading.Lock, ())
    table[type(threading.RLock())] = lambda _: (threading.RLock, ())
    table[threading.Condition] = lambda _: (threading.Condition, ())
    samples = (
        ec.generate_private_key(ec.SECP256R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=1024),  # only its type is used
        ed25519.Ed25519PrivateKey.generate(),
    )
    for sample in samples:
        table[type(sample)] = _reduce_private_key
    return table


def dump_backends(services: tuple[str, ...] = PERSISTED_SERVICES) -> bytes:
    """Pickle every account's and region's backend of ``services`` (call it with requests paused)."""
    from moto.backends import get_backend

    state = {
        name: {account: dict(regions) for account, regions in get_backend(name).items()}  # type: ignore[call-overload]
        for name in services
    }
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _dispatch_table()
    pickler.dump(state)
    return buffer.getvalue()


def load_backends(payload: bytes) -> int:
    """Install the pickled backends into this process's moto; returns how many were installed."""
    from moto.backends import get_backend

    state = pickle.loads(payload)  # our own file, checksummed, in the user's folder
    installed = 0
    for name, accounts in state.items():
        backends = get_backend(name)
        for account, regions in accounts.items():
            account_backends = backends[account]
            for region, backend in regions.items():
                dict.__setitem__(account_backends, region, backend)
                installed += 1
    return installed


def format_version() -> str:
    import moto

    return f"moto {moto.__version__}"


class Snapshotter:
    """Restores the snapshot at start, writes one every ``interval_s`` seconds and a last one at stop."""

    def __init__(self, path: Path, interval_s: float) -> None:
        self.path = path
        self.interval_s = interval_s
        self.status = PersistenceStatus(path=str(path), interval_s=interval_s)
        self.gate: SnapshotGate | None = None
        self._lock = threading.Lock()  # one snapshot at a time (periodic, forced, final)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wrap(self, app: Any) -> Any:
        """The WSGI middleware for :func:`~fleetota_core.local.server.start_moto`."""
        from fleetota_core.local.server import ControlRoutes

        self.gate = SnapshotGate(app)
        return ControlRoutes(self.gate, self)

    def restore(self) -> str:
        """Load the snapshot into moto; a bad one is set aside, and the stack starts empty (loudly)."""
        if not self.path.exists():
            self.status.restored = f"no snapshot at {self.path}: started empty"
            return self.status.restored
        started = time.perf_counter()
        try:
            header, payload = decode(self.path.read_bytes(), format_version())
            installed = load_backends(payload)
        except Exception as exc:  # whatever reading or unpickling raises, start-up must go on
            return self._unusable(exc)
        self.status.restored = (
            f"restored {installed} backends ({header.size:,} bytes) saved "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(header.created))} "
            f"in {time.perf_counter() - started:.2f} s"
        )
        return self.status.restored

    def _unusable(self, exc: BaseException) -> str:
        from moto.core.base_backend import BackendDict

        BackendDict.reset()  # drop whatever a partial load installed
        aside = self.path.with_name(f"{self.path.name}.unusable-{time.strftime('%Y%m%dT%H%M%S')}")
        try:
            self.path.replace(aside)
        except OSError:
            aside = self.path
        self.status.warning = (
            f"the local stack's saved state could not be restored ({type(exc).__name__}: {exc}); "
            f"it STARTED EMPTY. The unusable file is kept as {aside}"
        )
        self.status.restored = "started empty: snapshot unusable"
        logger.error("%s", self.status.warning)
        return self.status.restored

    def snapshot(self, force: bool = False) -> bool:
        """Write a snapshot if anything may have changed (always when ``force``); False if skipped."""
        gate = self.gate
        if gate is None:
            return False
        with self._lock:
            if not force and not gate.dirty:
                return False
            try:
                payload, pause = self._capture(gate)
                started = time.perf_counter()
                write_atomic(self.path, encode(payload, format_version(), time.time()))
            except Exception as exc:  # a failed snapshot must not stop the stack
                gate.dirty = True
                self.status.last_error = f"{type(exc).__name__}: {exc}"
                logger.exception("snapshot of the local stack failed")
                return False
            self.status.snapshots += 1
            self.status.last_snapshot_at = time.time()
            self.status.last_size = len(payload)
            self.status.last_pause_ms = round(pause * 1000, 1)
            self.status.last_write_ms = round((time.perf_counter() - started) * 1000, 1)
            self.status.last_error = None
            return True

    def _capture(self, gate: SnapshotGate) -> tuple[bytes, float]:
        for attempt in range(PICKLE_RETRIES):
            with gate.paused():
                started = time.perf_counter()
                gate.dirty = False
                try:
                    return dump_backends(), time.perf_counter() - started
                except RuntimeError:
                    # An ungated long poll (SQS ReceiveMessage) changed a queue mid-pickle; try again.
                    gate.dirty = True
                    if attempt == PICKLE_RETRIES - 1:
                        raise
        raise AssertionError("unreachable")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="local-snapshots", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.snapshot()

    def stop(self) -> None:
        """Stop the periodic snapshots and write a final one."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.snapshot(force=True)
