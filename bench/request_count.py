"""Counts the AWS requests a benchmark's clients make, by operation and by what they are for.

Keys are ``<service>.<Operation>``; DynamoDB requests also count per table
(``dynamodb.GetItem[ledger]``) and the items they touch (``<key>.items``), since DynamoDB bills per
item; the registry's reads are ``dynamodb.BatchGetItem[registry]`` and the registry change feed's
``dynamodb.GetItem[registry change feed]``. The local stack's stack-generation read (a ``local
reset`` check that AWS mode does not make) is counted apart, under ``local_only``; the update
manager's requests (it runs on the local scheduler's thread) are also counted under
``update_manager:<key>`` (per table too, ``update_manager:<op>[table]``), since they follow the
schedule, not the records.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from fleetota_core.adapters.fleet_snapshot import DELTA_PREFIX

# The local runtime's scheduler thread runs the update manager (fleetota_core/local/runtime.py).
SCHEDULER_THREAD = "fleetota-scheduler"
TABLES = ("vehicles", "campaigns", "deployments", "audit", "ledger", "registry")
FEED_PK = "registry#changes"  # fleetota_core/adapters/registry_changes.py
SNAPSHOT_PREFIX = "snapshots/fleet/"  # the snapshot, its index, shards and deltas (adapters/fleet_*.py)


def _items(op: str, params: dict[str, Any]) -> int:
    if op.endswith("BatchGetItem"):
        return sum(len(r.get("Keys", [])) for r in params.get("RequestItems", {}).values())
    if op.endswith("TransactWriteItems"):
        return len(params.get("TransactItems", []))
    if op.startswith("dynamodb.") and op.split(".")[1] in {"PutItem", "UpdateItem", "GetItem", "DeleteItem"}:
        return 1
    return 0


def _table_of(params: dict[str, Any], names: dict[str, str]) -> str | None:
    table = params.get("TableName") or next(iter(params.get("RequestItems", {})), None)
    if table is None and params.get("TransactItems"):
        first = params["TransactItems"][0]
        table = next(iter(first.values())).get("TableName")
    return names.get(str(table)) if table else None


def _snapshot_read(op: str, params: dict[str, Any]) -> bool:
    """The update manager's work on the fleet snapshot, whichever thread makes it (the merge reads
    deltas and writes shards on pools of its own): any read under the snapshot prefix (the processor
    reads only telemetry objects) and any write there but a delta's (the processor's)."""
    key = str(params.get("Key", ""))
    if not key.startswith(SNAPSHOT_PREFIX):
        return False
    return op == "s3.GetObject" or (op == "s3.PutObject" and not key.startswith(DELTA_PREFIX))


class RequestCounter:
    """Register on a :class:`~fleetota_core.adapters.clients.ClientFactory`'s clients with :meth:`watch`."""

    def __init__(self, resources: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.local_only: Counter[str] = Counter()
        self.empty_receives = 0
        self._names = {getattr(resources, f"{t}_table"): t for t in TABLES}
        self._lock = threading.Lock()

    def watch(
        self, clients: Any, services: tuple[str, ...] = ("s3", "sqs", "dynamodb", "cloudwatch", "sns", "kms")
    ) -> None:
        for service in services:
            events = clients.client(service).meta.events
            events.register("before-parameter-build.*.*", self._before)
            if service == "sqs":
                events.register("after-call.sqs.ReceiveMessage", self._after_receive)

    def _before(self, event_name: str, params: dict[str, Any] | None = None, **_: Any) -> None:
        op = event_name.removeprefix("before-parameter-build.")
        params = params or {}
        if op == "dynamodb.GetItem" and params.get("Key", {}).get("pk", {}).get("S") == "stack":
            with self._lock:
                self.local_only["dynamodb.GetItem (stack generation)"] += 1
            return
        items = _items(op, params)
        keys = [op]
        if op.startswith("dynamodb.") and (table := _table_of(params, self._names)):
            keys.append(f"{op}[{table}]")
        if op == "dynamodb.GetItem" and params.get("Key", {}).get("pk", {}).get("S") == FEED_PK:
            keys.append(f"{op}[registry change feed]")  # the processors' feed reads, apart
        if threading.current_thread().name == SCHEDULER_THREAD or _snapshot_read(op, params):
            # Fired on the schedule, so per minute, not per record; per table too, so that what the
            # handlers read of a table (the vehicles' states) is the total minus this.
            keys += [f"update_manager:{key}" for key in keys]
        with self._lock:
            for key in keys:
                self.calls[key] += 1
                if items:
                    self.calls[f"{key}.items"] += items

    def _after_receive(self, parsed: dict[str, Any] | None = None, **_: Any) -> None:
        if not (parsed or {}).get("Messages"):
            with self._lock:
                self.empty_receives += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter({**self.calls, **{f"local_only:{k}": v for k, v in self.local_only.items()},
                            "sqs.ReceiveMessage.empty": self.empty_receives})  # fmt: skip


def requests_only(counts: Counter[str]) -> int:
    """Requests (not items, not per-table repeats, not local-only reads) in ``counts``."""
    skip = (".items", ".empty")
    return sum(
        n for k, n in counts.items()
        if "." in k and not k.endswith(skip) and "[" not in k and ":" not in k
    )  # fmt: skip
