"""The local AWS endpoint: find one already listening, or start moto in server mode."""

from __future__ import annotations

import functools
import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from fleetota_core.errors import BackendUnavailableError
from fleetota_core.local import moto_speedups

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from moto.server import ThreadedMotoServer

    from fleetota_core.local.persistence import Snapshotter

EndpointKind = Literal["moto", "localstack", "aws-compatible"]
# DynamoDB's JSON protocol names the operation in this header, e.g. "DynamoDB_20120810.PutItem".
DYNAMODB_WRITES = frozenset(
    f"DynamoDB_20120810.{op}"
    for op in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
)


class SerialisedDynamoDBWrites:
    """WSGI middleware: one DynamoDB write request at a time, everything else passes straight through.

    DynamoDB checks a write's condition and applies it atomically; moto's threaded server does not, so
    two concurrent conditional writes can both pass the check (two overlapping ticks would then notify
    one vehicle twice) and concurrent transactions can fail with HTTP 500. Serialising the writes gives
    the local stack DynamoDB's guarantee; reads stay concurrent.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET") not in DYNAMODB_WRITES:
            return self.app(environ, start_response)
        with self.lock:
            # moto does the write while building the response, so materialise it inside the lock.
            return list(self.app(environ, start_response))


# Requests that may hold the server for seconds and must not hold up a snapshot (see SnapshotGate).
UNGATED = frozenset({"AmazonSQS.ReceiveMessage"})
# Requests known to change nothing; anything else marks the state as changed since the last snapshot.
_DYNAMODB_READS = ("GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables")
_KMS_READS = ("GetPublicKey", "DescribeKey", "ListAliases", "ListKeys", "Sign")
READ_ONLY = frozenset(f"DynamoDB_20120810.{op}" for op in _DYNAMODB_READS) | frozenset(
    f"TrentService.{op}" for op in _KMS_READS
)


class SnapshotGate:
    """WSGI middleware that lets a snapshot pause the server between requests.

    Requests run concurrently as before; :meth:`paused` stops new ones at the door, waits for those
    in flight, and holds them until the snapshot has pickled the state, so a snapshot never sees half
    a request (DynamoDB's writes are already one at a time, see :class:`SerialisedDynamoDBWrites`).
    Long polls (:data:`UNGATED`) are let through: waiting for them would pause everything for seconds.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.dirty = True  # anything may have changed since the last snapshot
        self._cond = threading.Condition()
        self._active = 0
        self._paused = False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target in UNGATED:
            return self.app(environ, start_response)
        with self._cond:
            while self._paused:
                self._cond.wait()
            self._active += 1
        try:
            if target not in READ_ONLY and environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
                self.dirty = True
            # moto changes its state while building the response, so materialise it inside the gate.
            return list(self.app(environ, start_response))
        finally:
            with self._cond:
                self._active -= 1
                if not self._active:
                    self._cond.notify_all()

    @contextmanager
    def paused(self) -> Iterator[None]:
        with self._cond:
            self._paused = True
            while self._active:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._paused = False
                self._cond.notify_all()


class ControlRoutes:
    """``GET /_fleetota/persistence`` (snapshot status) and ``POST /_fleetota/snapshot`` (take one now)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], snapshotter: Snapshotter) -> None:
        self.app = app
        self.snapshotter = snapshotter

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD")
        if path == "/_fleetota/snapshot" and method == "POST":
            self.snapshotter.snapshot(force=True)
        elif path != "/_fleetota/persistence":
            return self.app(environ, start_response)
        body = json.dumps(self.snapshotter.status.as_dict()).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _get(url: str, timeout: float) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read(4096).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (OSError, ValueError):
        return None


def probe_endpoint(endpoint_url: str, timeout: float = 2.0) -> EndpointKind | None:
    """What answers at ``endpoint_url``: moto, LocalStack, another AWS-compatible server, or nothing.

    Anything that answers HTTP on the port counts as AWS-compatible; the caller's first AWS call
    tells otherwise with a clear botocore error.
    """
    host, port = endpoint_url.removeprefix("http://").rsplit(":", 1)
    if not port_is_open(host, int(port), timeout=min(timeout, 0.5)):
        return None
    moto = _get(f"{endpoint_url}/moto-api/config", timeout)
    if moto is not None and moto[0] in (200, 201) and moto[1].lstrip().startswith("{"):
        return "moto"
    localstack = _get(f"{endpoint_url}/_localstack/health", timeout)
    if localstack is not None and localstack[0] == 200:
        return "localstack"
    if moto is None and localstack is None:
        return None
    return "aws-compatible"


def start_moto(
    host: str, port: int, wrap: Callable[[Callable[..., Iterable[bytes]]], Any] | None = None
) -> ThreadedMotoServer:
    """moto in server mode on ``host:port`` (``port=0`` picks a free port), in a daemon thread.

    ``wrap`` adds WSGI middleware outside the serialised DynamoDB writes (the snapshot gate).
    """
    from moto.server import ThreadedMotoServer  # imported late: moto is heavy and only local mode needs it

    moto_speedups.apply()

    # Werkzeug logs every request at INFO; the runtime polls, so that would drown the useful lines.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # ThreadedMotoServer.start() waits forever if its thread cannot bind, so check the port first.
    if port:
        try:
            with socket.socket() as trial:
                trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                trial.bind((host, port))
        except OSError as exc:
            raise BackendUnavailableError(
                f"cannot start the local AWS endpoint on {host}:{port}: {exc.strerror}; "
                "free the port or set FLEETOTA_LOCAL_PORT"
            ) from exc
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    # ThreadedMotoServer has no hook for WSGI middleware, so wrap the app of its werkzeug server. This
    # happens before start_moto returns, i.e. before anything is provisioned or written.
    wsgi = server._server
    if wsgi is None:  # start() sets it; checked so that a moto change fails here, not in a request
        raise BackendUnavailableError(f"moto started no server on {host}:{port}")
    _remember_backends(wsgi.app)
    wsgi.app = SerialisedDynamoDBWrites(wsgi.app)
    if wrap is not None:
        wsgi.app = wrap(wsgi.app)
    return server


def _remember_backends(dispatcher: Any) -> None:
    """Resolve each host name to its moto service once instead of on every request.

    moto's dispatcher lists its package directory and tries hundreds of URL patterns for every
    request (about a tenth of the server's time under the update manager's load); the answer for a
    host never changes while the server runs.
    """
    dispatcher.get_backend_for_host = functools.cache(dispatcher.get_backend_for_host)


def control_request(endpoint_url: str, route: str, timeout: float = 60.0) -> dict[str, Any] | None:
    """Call one of the local stack's ``/_fleetota/`` routes; None if the server has none (not ours)."""
    method = "POST" if route == "snapshot" else "GET"
    url = f"{endpoint_url}/_fleetota/{route}"
    request = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) and "path" in body else None


def reset_moto(endpoint_url: str, timeout: float = 10.0) -> None:
    """Wipe every resource and all data of a moto server (callers provision again afterwards)."""
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            json.loads(response.read() or b"{}")
    except (OSError, ValueError) as exc:
        raise BackendUnavailableError(f"cannot reset the local AWS endpoint {endpoint_url}: {exc}") from exc
