"""Runs a Lambda handler in-process the way the Lambda service would: its env, a context, and
one invocation at a time per function (one execution environment each).

Different functions run side by side, as on Lambda: each invocation sees its function's
environment variables only on its own thread (:mod:`fleetota_core.local.invocation_env`), and
stdout is captured per thread, so the captured EMF lines become that invocation's metric data.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fleetota_core.errors import ConfigurationError
from fleetota_core.local.emf import split_emf
from fleetota_core.local.invocation_env import function_environment

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fleetota_core.local.stack_spec import FunctionSpec

Handler = Callable[[dict[str, Any], Any], Any]
logger = logging.getLogger(__name__)
# Imports are process-wide: one handler module is imported at a time.
_IMPORT_LOCK = threading.RLock()


@dataclass
class LambdaContext:
    """The attributes Powertools and handlers read from the real Lambda context."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    """What one invocation did: its response or error, its duration and the metrics it emitted."""

    function_name: str
    request_id: str
    duration_ms: float
    response: Any = None
    error: BaseException | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.error is not None


class _ThreadRoutedStdout(io.TextIOBase):
    """Sends writes from capturing threads to their buffer and all other writes to ``target``."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.buffers: dict[int, list[str]] = {}

    def write(self, text: str) -> int:
        buffer = self.buffers.get(threading.get_ident())
        if buffer is None:
            return self.target.write(text)
        buffer.append(text)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return False


# One router for the process, installed once: per-invocation swaps of sys.stdout from several threads
# restored each other's objects out of order and left the main thread printing into a stale router.
_router: _ThreadRoutedStdout | None = None
_router_lock = threading.Lock()


@contextmanager
def _captured_stdout() -> Iterator[list[str]]:
    """What this thread prints while inside, kept apart; other threads still print to the real stdout."""
    global _router
    with _router_lock:
        if _router is None or sys.stdout is not _router:
            # First use, or something (a test's capture) replaced stdout since: route whatever it is now.
            _router = _ThreadRoutedStdout(sys.stdout)
            sys.stdout = _router
        router = _router
    buffer: list[str] = []
    ident = threading.get_ident()
    router.buffers[ident] = buffer
    try:
        yield buffer
    finally:
        router.buffers.pop(ident, None)


@contextmanager
def captured_emf() -> Iterator[list[dict[str, Any]]]:
    """The metric datums of the EMF lines this thread prints while inside; other lines still print.

    For code the runtime runs outside a handler (a test driving the tick directly), so its metrics
    reach CloudWatch the way a handler's do.
    """
    datums: list[dict[str, Any]] = []
    text: list[str] = []
    try:
        with _captured_stdout() as captured:
            try:
                yield datums
            finally:
                text.append("".join(captured))
    finally:
        found, log_lines = split_emf("".join(text))
        datums.extend(found)
        for line in log_lines:
            if line.strip():
                print(line, flush=False)


def load_handler(spec: FunctionSpec) -> Handler:
    """Import ``handler`` from the function's source file under a name of its own."""
    module_name = f"fleetota_lambda_{spec.key}"
    with _IMPORT_LOCK:
        return _import_handler(spec, module_name)


def _import_handler(spec: FunctionSpec, module_name: str) -> Handler:
    if module_name in sys.modules:
        return sys.modules[module_name].handler
    if not spec.source.is_file():
        raise ConfigurationError(f"the handler file {spec.source} of {spec.name} does not exist")
    module_spec = importlib.util.spec_from_file_location(module_name, spec.source)
    if module_spec is None or module_spec.loader is None:
        raise ConfigurationError(f"cannot import {spec.source}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module.handler


class LocalFunction:
    """One Lambda function of the template, invoked in-process."""

    def __init__(
        self, spec: FunctionSpec, environment: dict[str, str], handler: Handler | None = None
    ) -> None:
        self.spec = spec
        self.environment = environment
        self._handler = handler
        # One execution environment: its invocations run one at a time, another function's beside them.
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.spec.name

    def real_handler(self) -> Handler:
        """The template's own handler, imported with this function's environment (as Lambda would)."""
        with function_environment(self.environment):
            return load_handler(self.spec)

    def invoke(self, event: dict[str, Any]) -> Invocation:
        """Call the handler with ``event``; a raised exception is recorded, not propagated."""
        context = LambdaContext(
            function_name=self.spec.name,
            invoked_function_arn=self.spec.arn,
            memory_limit_in_mb=self.spec.memory_mb,
            timeout_seconds=self.spec.timeout_seconds,
        )
        result = Invocation(function_name=self.spec.name, request_id=context.aws_request_id, duration_ms=0.0)
        with self._lock, function_environment(self.environment):
            started = time.perf_counter()
            with _captured_stdout() as captured:
                try:
                    handler = self._handler or load_handler(self.spec)
                    result.response = handler(event, context)
                except Exception as exc:  # a failed invocation is data for the caller (Errors metric)
                    result.error = exc
                    captured.append(traceback.format_exc())
            result.duration_ms = (time.perf_counter() - started) * 1000
        result.metrics, log_lines = split_emf("".join(captured))
        for line in log_lines:
            if line.strip():
                print(line, flush=False)
        sys.stdout.flush()
        return result
