"""Starting the local stack for the dashboard, and the runtime's background threads."""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import TYPE_CHECKING, Any

import pytest

from fleetota_core.local import ensure_running, local_status
from fleetota_core.settings import Settings

if TYPE_CHECKING:
    from pathlib import Path

    from tests.integration.conftest import LocalStack


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ensure_running_attaches_to_a_ready_stack_without_starting_another(stack: LocalStack):
    status = ensure_running(stack.settings)
    assert status.ready and not status.started and status.backend == "moto"
    assert stack.endpoint_url in str(status)


@pytest.mark.slow
def test_ensure_running_starts_a_detached_stack_once_and_later_calls_attach(tmp_path: Path):
    settings = Settings(
        mode="local", local_host="127.0.0.1", local_port=_free_port(), state_dir=tmp_path / "state"
    )
    log = tmp_path / "local-stack.log"
    started = ensure_running(settings, timeout=60, log_path=log)
    try:
        assert started.started and started.ready and started.pid
        # Provisioned means ready for clients; the runtime starts a moment later.
        deadline = time.monotonic() + 30
        while "local stack ready" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "local stack ready" in log.read_text()
        again = ensure_running(settings, timeout=10, log_path=log)
        assert again.ready and not again.started
    finally:
        os.kill(started.pid or 0, signal.SIGTERM)
        _, code = os.waitpid(started.pid or 0, 0)
    assert os.waitstatus_to_exitcode(code) == 0
    assert not local_status(settings).running
    assert "saved the local stack's state" in log.read_text()
    assert (tmp_path / "state" / "local-stack.snapshot").exists()


def test_started_runtime_processes_telemetry_in_the_background_until_stopped(stack: LocalStack):
    seen: list[str] = []

    def records(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.extend(r["messageId"] for r in event["Records"])
        return {"batchItemFailures": []}

    runtime = stack.make_runtime(handlers={"telemetry_processor": records}, poll_wait_seconds=1)
    runtime.start()
    assert runtime.is_running
    try:
        stack.clients.s3.put_object(Bucket=stack.resources.telemetry_bucket, Key="raw/x.ndjson.gz", Body=b"")
        deadline = time.monotonic() + 15
        while not seen and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        runtime.stop()
    assert len(seen) == 1
    assert not runtime.is_running
