"""Overhead of the local stack itself: per-test reset and the runtime's SQS event-source loop.

    .venv/bin/python bench/local_runtime.py [--messages 500] [--backlog 100] [--resets 20]

Starts moto in this process on a free port and provisions it from infra/template.yaml, then prints:

* reset: moto reset + provisioning again, what the ``stack`` fixture does before every integration
  test (median of ``--resets`` runs);
* drain: messages per second through ``LocalRuntime.drain`` with a handler that does nothing, so
  the figure is the runtime's own cost (receive, event shaping, invocation, delete, metrics), with
  the template's batch size; the baseline is the same loop with batches of one message, which is what
  per-message delivery would cost. The ratio is batched / one-by-one throughput. moto's
  ReceiveMessage scans the whole queue on every call, so the rate falls as the backlog grows
  (try ``--backlog 1000``); AWS has no such cost.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# Runnable from a fresh clone without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fleetota_core.adapters.clients import client_factory
from fleetota_core.local.provision import provision
from fleetota_core.local.runtime import LocalRuntime
from fleetota_core.local.server import reset_moto, start_moto
from fleetota_core.local.stack_spec import read_stack_spec
from fleetota_core.settings import Settings


def _noop(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"batchItemFailures": []}


def _drain_rate(runtime: LocalRuntime, url: str, messages: int, backlog: int) -> float:
    """Messages per second through ``drain``, queued ``backlog`` at a time (untimed sends)."""
    sqs = runtime.clients.sqs
    elapsed = 0.0
    for chunk_start in range(0, messages, backlog):
        chunk = min(backlog, messages - chunk_start)
        for start in range(0, chunk, 10):
            entries = [{"Id": str(i), "MessageBody": "{}"} for i in range(min(10, chunk - start))]
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
        began = time.perf_counter()
        result = runtime.drain(timeout=600)
        elapsed += time.perf_counter() - began
        assert result.succeeded == chunk, result
    return messages / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--resets", type=int, default=20)
    parser.add_argument("--backlog", type=int, default=100, help="messages queued at a time")
    args = parser.parse_args()

    server = start_moto("127.0.0.1", 0)
    try:
        settings = Settings(mode="local", local_host="127.0.0.1", local_port=server.get_host_and_port()[1])
        clients = client_factory(settings)
        spec = read_stack_spec(settings)
        provision(spec, clients)
        timings = []
        for _ in range(args.resets):
            began = time.perf_counter()
            reset_moto(settings.endpoint_url or "")
            provision(spec, clients)
            timings.append(time.perf_counter() - began)
        print(f"reset + provision: {statistics.median(timings) * 1000:.0f} ms median of {args.resets}")

        url = spec.resources.telemetry_queue_url
        batched = LocalRuntime(settings, clients=clients, spec=spec, handlers={"telemetry_processor": _noop})
        rate = _drain_rate(batched, url, args.messages, args.backlog)
        single_sources = [dataclasses.replace(s, batch_size=1) for s in spec.queue_sources]
        one_by_one_spec = dataclasses.replace(spec, queue_sources=single_sources)
        single = LocalRuntime(
            settings, clients=clients, spec=one_by_one_spec, handlers={"telemetry_processor": _noop}
        )
        baseline = _drain_rate(single, url, args.messages, args.backlog)
        batch_size = spec.queue_sources[0].batch_size
        print(
            f"drain, batch size {batch_size}: {rate:.0f} messages/s "
            f"({args.messages} messages, {args.backlog} queued at a time, no-op handler)"
        )
        print(f"baseline, batch size 1: {baseline:.0f} messages/s; ratio {rate / baseline:.1f}x")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
