"""Telemetry accounting from the ledger counters: received = stored + quarantined, the rest beside it."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.ledger import DynamoLedger
from fleetota_core.adapters.queue_reader import queue_depth
from fleetota_core.services.ingest.telemetry_object import LAG_EDGES_MS

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources

_QUARANTINED = "quarantined__"
_OBJECTS_QUARANTINED = "objects_quarantined__"


def lag_percentile(counters: Mapping[str, int], q: float, prefix: str = "lag") -> float | None:
    """The ``q`` quantile (0-1) of a lag histogram in ms, interpolated inside its bucket."""
    edges = [*LAG_EDGES_MS, None]
    counts = [counters.get(f"{prefix}_le_{e if e is not None else 'inf'}", 0) for e in edges]
    total = sum(counts)
    if not total:
        return None
    target, seen, lower = q * total, 0, 0.0
    for edge, count in zip(edges, counts, strict=True):
        if count and seen + count >= target:
            if edge is None:
                return float(lower)
            return lower + (edge - lower) * (target - seen) / count
        seen += count
        lower = float(edge) if edge is not None else lower
    return float(lower)


def summarize(counters: Mapping[str, int], dlq: int | None) -> dict[str, Any]:
    """The operator's view of the counters; also used on a delta between two reads (benchmarks)."""
    c = Counter(counters)
    stored_lag = c["lag_sum_ms"] / c["stored"] if c["stored"] else None
    return {
        "received": c["received"],
        "stored": c["stored"],
        "quarantined": c["quarantined"],
        "quarantined_by_reason": {
            k.removeprefix(_QUARANTINED): v for k, v in sorted(c.items()) if k.startswith(_QUARANTINED) and v
        },
        "duplicates": {"objects": c["duplicate_objects"], "records": c["duplicate_records"]},
        "dlq": dlq,
        "objects": c["objects"],
        "objects_quarantined": c["objects_quarantined"],
        "objects_quarantined_by_reason": {
            k.removeprefix(_OBJECTS_QUARANTINED): v
            for k, v in sorted(c.items())
            if k.startswith(_OBJECTS_QUARANTINED) and v
        },
        "vehicle_writes": c["vehicle_writes"],
        "vehicle_writes_skipped": c["vehicle_writes_skipped"],
        "stale_vehicle_readings": c["stale_vehicle_readings"],
        # Report by exception: hinted changes held back by the per-vehicle bound (the snapshot has them),
        # and how each vehicle's write was decided: on the stored state (read, or from the cache) or on
        # the record's own ``changed`` (no read).
        "vehicle_writes_deferred": c["vehicle_writes_deferred"],
        "vehicle_states_read": c["vehicle_states_read"],
        "vehicle_state_reads_avoided": c["vehicle_state_reads_avoided"],
        # Records claiming a model or hardware revision other than the registry's (kept as registered).
        "identity_mismatch": c["identity_mismatch"],
        "ota": {k.removeprefix("ota_"): v for k, v in sorted(c.items()) if k.startswith("ota_") and v},
        "lag_ms": {
            "mean": None if stored_lag is None else round(stored_lag, 1),
            "p50": _round(lag_percentile(c, 0.50)),
            "p95": _round(lag_percentile(c, 0.95)),
        },
        "object_lag_ms": {
            "mean": round(c["object_lag_sum_ms"] / c["object_lag_count"], 1)
            if c["object_lag_count"]
            else None,
            "p50": _round(lag_percentile(c, 0.50, "object_lag")),
            "p95": _round(lag_percentile(c, 0.95, "object_lag")),
        },
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def total_counters(hours: Iterable[Mapping[str, int]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for hour in hours:
        total.update(hour)
    return total


def ledger_counters(clients: ClientFactory, resources: Resources) -> Counter[str]:
    return total_counters(DynamoLedger(clients.dynamodb, resources.ledger_table).counters().values())


def telemetry_stats(clients: ClientFactory, resources: Resources) -> dict[str, Any]:
    """Received, stored, quarantined (by reason), duplicate and DLQ counts since the ledger began."""
    dlq = queue_depth(clients.sqs, resources.telemetry_dlq_url)
    return summarize(ledger_counters(clients, resources), dlq["visible"] + dlq["in_flight"])
