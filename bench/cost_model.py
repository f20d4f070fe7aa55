"""Monthly AWS cost of the telemetry path at 100, 10k and 1M vehicles, from a measured e2e run.

    .venv/bin/python bench/cost_model.py RESULT.json [--interval 10] [--batching-window 1]

RESULT.json is what ``bench/pipeline_e2e.py --out`` wrote. From that run come the requests per
object (S3, SQS, ledger), the share of readings that were material (vehicle writes: since issue
#16 the vehicles table takes material changes only, and "last seen" rides in the per-invocation
snapshot delta) and the share of readings that carried the vehicle's own change flag (``changed``,
which spares the processor the read of the stored state). The processor's caches are modelled per
vehicle and per warm instance, so the figures hold for other fleet sizes and intervals: SQS hands
each object to one of ``--processor-instances`` warm processors at random, and each keeps what it
read for its TTL (see :func:`cache_reads_per_vehicle_s`).
Designs priced from the same run: this one; the one before it (every reading decided against the
stored state, 60 s state cache, 5-minute registry cache); the one before that, which also rewrote
every vehicle's state on a 2-4 min heartbeat (mean 3); and the original one (by construction: one
object, S3 event, PutItem and PutMetricData per record).
Prices: us-east-1 list prices, on-demand DynamoDB after the November 2024 cut, no free tier, no
data transfer (everything stays in the region).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fleetota_core.services.ingest.ports import MAX_COMMIT_ITEMS  # noqa: E402
from fleetota_core.services.ingest.registry_cache import (  # noqa: E402
    FEED_READ_INTERVAL_S,
    REGISTERED_TTL_S,
    TOP_UP_AHEAD_S,
)
from fleetota_core.services.ingest.state_cache import DEFAULT_TTL_S as STATE_CACHE_TTL_S  # noqa: E402

SECONDS_PER_MONTH = 30 * 24 * 3600
PRICE = {
    "s3_put": 0.005 / 1000,  # PUT, COPY, POST, LIST
    "s3_get": 0.0004 / 1000,
    "s3_gb_month": 0.023,
    "sqs_request": 0.40 / 1e6,  # per 64 KB chunk
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_s": 0.0000166667,
    "ddb_wru": 0.625 / 1e6,
    "ddb_rru": 0.125 / 1e6,
    "cw_put_metric_data": 0.01 / 1000,
    "cw_metric_month": 0.30,
    "cw_logs_gb": 0.50,
}
LAMBDA_GB = 1.0  # MemorySize 1024 in the template
BATCH_RECORDS = 1000  # records per object (the simulator's default)
MEAN_HEARTBEAT_S = 180.0  # the previous design's heartbeat write, 2-4 min per VIN
# The telemetry event source mapping (infra/template.yaml) and Lambda's initial SQS pollers.
EVENT_BATCH_SIZE = 10
BATCHING_WINDOW_S = 1.0
POLLERS = 5


@dataclass(frozen=True)
class Design:
    """What decides the processor's DynamoDB reads and writes per vehicle."""

    state_ttl_s: float = STATE_CACHE_TTL_S  # CachedVehicleStates in AWS mode
    registry_ttl_s: float = REGISTERED_TTL_S  # RegistryCache: found entries, changes arrive by the feed
    registry_feed_every_s: float | None = FEED_READ_INTERVAL_S  # the feed's GetItem, per instance
    # A registry read is filled to 100 keys with answers due within this long (0: no top-up).
    registry_top_up_s: float = TOP_UP_AHEAD_S
    hinted_share: float = 1.0  # readings carrying ``changed``: decided without a state read
    heartbeat_s: float | None = None  # a state write per vehicle per heartbeat (two designs back)
    instances: int = POLLERS  # warm processors sharing the objects at random
    batching_window_s: float = BATCHING_WINDOW_S
    # GETs of each snapshot delta by the update manager: 1, as the merge's coordinator fetches each
    # delta once for all its parts (services/ingest/snapshot_parts.py, merge_in_parts); before
    # that, one per merge part (2 with the template's UpdateManagerMemoryMB 3538).
    delta_reads: int = 1
    # Material writes ride in the invocation's ledger commit (services/ingest/telemetry_object.py,
    # commit_outcomes): no request of their own while they fit its 100 items, 2 WCU each.
    carried_writes: bool = True
    # The ledger read of every batch's objects; since the receive count, only of redelivered messages.
    ledger_reads_every_batch: bool = False


# Issue #16 before the change flag and the registry feed: every reading decided against the
# stored state, and the registry re-read every 5 minutes.
PREVIOUS = Design(
    registry_ttl_s=300.0,
    registry_feed_every_s=None,
    registry_top_up_s=0.0,
    hinted_share=0.0,
    carried_writes=False,
    ledger_reads_every_batch=True,
)
HEARTBEAT = replace(PREVIOUS, heartbeat_s=MEAN_HEARTBEAT_S)
RAW_RETENTION_DAYS = 30


def measured(result: dict[str, Any]) -> dict[str, float]:
    """What the run measured, per object and per processor invocation, and the material share.

    Runs before the per-invocation ledger (no ``objects_per_processor_invocation``) count one
    invocation per object and their ledger by operation only.
    """
    r = result["requests_per_1000_records"]
    objects = result["simulator_put_object_per_1000_records"]  # per 1,000 records
    batch = result.get("objects_per_processor_invocation") or 1.0
    invocations = objects / batch

    def ledger(op: str) -> float:
        if "objects_per_processor_invocation" in result:
            name, _, items = op.partition(".")
            suffix = f".{items}" if items else ""
            # The registry change feed is an item of the ledger table, modelled apart ("registry
            # change feed"): its GetItem is not the ledger's.
            feed = r.get(f"dynamodb.{name}[registry change feed]{suffix}", 0.0)
            return r.get(f"dynamodb.{name}[ledger]{suffix}", 0.0) - feed
        # Earlier runs counted no tables: the ledger's were all the GetItem and TransactWriteItems.
        return 0.0 if op.startswith("BatchGetItem") else r.get(f"dynamodb.{op}", 0.0)

    records = result["after_warm_up"]["records"]
    return {
        # The processor's reads of telemetry objects; the update manager's reads of snapshot deltas
        # are modelled per invocation (one delta each) in "fleet snapshot".
        "get_object": (r.get("s3.GetObject", 0) - r.get("update_manager:s3.GetObject", 0)) / objects,
        "ledger_read_items": (ledger("BatchGetItem.items") + ledger("GetItem.items")) / objects,
        "ledger_requests": (ledger("BatchGetItem") + ledger("GetItem") + ledger("TransactWriteItems"))
        / invocations,
        "transact_items": ledger("TransactWriteItems.items") / objects,
        "sqs": (r.get("sqs.ReceiveMessage", 0) + r.get("sqs.DeleteMessageBatch", 0)) / invocations,
        "objects_per_invocation": batch,
        "material_share": result.get(
            "material_share", result["after_warm_up"]["vehicle_writes"] / max(1, records)
        ),
    }


def objects_per_invocation(objects_per_s: float, window_s: float = BATCHING_WINDOW_S) -> float:
    """How many objects one invocation gets: the event source's pollers (5 to start with) share the
    objects, each gathers for the batching window, up to the batch size."""
    return min(EVENT_BATCH_SIZE, max(1.0, objects_per_s * window_s / POLLERS))


def cache_reads_per_vehicle_s(interval: float, ttl: float, instances: int) -> float:
    """Table reads per vehicle per second behind per-instance caches.

    Each reading goes to one of ``instances`` warm processors at random; an instance that gets one
    of the vehicle's readings reads the vehicle unless it did within ``ttl`` (an entry lives ``ttl``
    from its read, hits do not extend it). So each instance that sees the vehicle in a TTL window
    reads it once per window, and no vehicle is read more often than it reports.
    """
    if ttl <= interval:
        return 1.0 / interval
    seen = 1.0 - (1.0 - 1.0 / instances) ** (ttl / interval)
    return min(1.0 / interval, instances / ttl * seen)


@dataclass(frozen=True)
class Reads:
    """Per vehicle per second: stored-state and registry reads, and the feed's GetItem per fleet."""

    state: float
    registry: float
    feed_per_s: float


def reads(design: Design, vehicles: int, interval: float) -> Reads:
    state = (1.0 - design.hinted_share) * cache_reads_per_vehicle_s(
        interval, design.state_ttl_s, design.instances
    )
    registry = cache_reads_per_vehicle_s(interval, design.registry_ttl_s, design.instances)
    # Re-read up to ``registry_top_up_s`` early: at most that share more keys.
    registry *= design.registry_ttl_s / (design.registry_ttl_s - design.registry_top_up_s)
    feed = design.instances / design.registry_feed_every_s if design.registry_feed_every_s else 0.0
    return Reads(state, registry, feed)


def requests_per_1000_records(
    m: dict[str, float], vehicles: int, interval: float, design: Design
) -> dict[str, float]:
    """AWS requests per 1,000 records end to end at this fleet size and interval, by what they are for."""
    objects = 1000 / min(BATCH_RECORDS, vehicles)
    batch = objects_per_invocation(math.ceil(vehicles / BATCH_RECORDS) / interval, design.batching_window_s)
    invocations = objects / batch
    per_object_keys = min(BATCH_RECORDS, vehicles)  # distinct vehicles in one object
    r = reads(design, vehicles, interval)

    def batch_gets(reads_per_vehicle_s: float, filled: bool = False) -> float:
        """BatchGetItem calls: 100 keys each, and an object whose vehicles all hit makes none.
        ``filled``: each call is filled to 100 keys with answers due soon (the registry's top-up)."""
        keys = per_object_keys * reads_per_vehicle_s * interval  # expected keys read for one object
        if filled:
            return objects * keys / 100
        return objects * (math.ceil(keys / 100 - 1e-9) if keys >= 100 else 1.0 - math.exp(-keys))

    ledger_per_invocation = m["ledger_requests"] if m["objects_per_invocation"] > 1 else 2.0
    if design.ledger_reads_every_batch:
        ledger_per_invocation = max(ledger_per_invocation, 2.0)
    records_per_s = vehicles / interval
    material = 1000 * m["material_share"]  # per 1,000 records
    if design.carried_writes:  # only what does not fit in the commit is written by itself
        room = MAX_COMMIT_ITEMS - batch - 1
        material = invocations * max(0.0, material / invocations - room)
    return {
        "upload (PutObject)": objects,
        "S3 event to SQS (SendMessage)": objects,
        "SQS receive + delete": invocations * m["sqs"],
        "GetObject": objects * m["get_object"],
        "ledger (BatchGetItem + TransactWriteItems)": invocations * ledger_per_invocation,
        "snapshot delta (PutObject + the update manager's GetObject)": invocations * (1 + design.delta_reads),
        "vehicle state writes (material only; in the ledger commit while they fit)": material,
        "vehicle state reads (cache misses, BatchGetItem)": batch_gets(r.state),
        "registry reads (cache misses, BatchGetItem)": batch_gets(r.registry, design.registry_top_up_s > 0),
        "registry change feed (GetItem)": 1000 * r.feed_per_s / records_per_s,
    }


def batched_monthly(
    m: dict[str, float], vehicles: int, interval: float, lambda_ms: float, gz: float, design: Design
) -> dict[str, float]:
    """The batched pipeline under ``design``."""
    ticks = SECONDS_PER_MONTH / interval
    records = vehicles * ticks
    objects = ticks * math.ceil(vehicles / BATCH_RECORDS)
    per_second = objects / SECONDS_PER_MONTH
    invocations = objects / objects_per_invocation(per_second, design.batching_window_s)
    heartbeats = vehicles * SECONDS_PER_MONTH / design.heartbeat_s if design.heartbeat_s else 0.0
    # A write in a transaction costs 2 write units.
    vehicle_writes = heartbeats + records * m["material_share"] * (2 if design.carried_writes else 1)
    r = reads(design, vehicles, interval)
    # Eventually consistent reads of items under 4 KB: half a read unit each.
    vehicle_reads = vehicles * SECONDS_PER_MONTH * r.state
    registry_reads = vehicles * SECONDS_PER_MONTH * r.registry + SECONDS_PER_MONTH * r.feed_per_s
    return {
        "S3 requests": objects * (PRICE["s3_put"] + m["get_object"] * PRICE["s3_get"]),
        "SQS": (objects + invocations * m["sqs"]) * PRICE["sqs_request"],
        "Lambda": invocations * PRICE["lambda_request"]
        + records * lambda_ms / 1000 * LAMBDA_GB * PRICE["lambda_gb_s"],
        # One marker read and write per object; one counters update per invocation (2 WCU per
        # transaction item).
        "DynamoDB ledger": objects
        * (max(m["ledger_read_items"], 1.0) if design.ledger_reads_every_batch else m["ledger_read_items"])
        * PRICE["ddb_rru"]
        + (objects + invocations) * 2 * PRICE["ddb_wru"],
        "DynamoDB vehicle state": vehicle_writes * PRICE["ddb_wru"] + vehicle_reads * 0.5 * PRICE["ddb_rru"],
        "DynamoDB registry": registry_reads * 0.5 * PRICE["ddb_rru"],
        "CloudWatch (EMF logs)": invocations * 2048 / 1e9 * PRICE["cw_logs_gb"],
        "fleet snapshot": SECONDS_PER_MONTH / 1800 * max(1.0, vehicles * 600 / 4096) * 0.5 * PRICE["ddb_rru"]
        + invocations * (PRICE["s3_put"] + design.delta_reads * PRICE["s3_get"])
        + SECONDS_PER_MONTH / 60 * (PRICE["s3_put"] + 2 * PRICE["s3_get"]),
        "raw storage (30 days)": records * gz * RAW_RETENTION_DAYS / 30 / 1e9 * PRICE["s3_gb_month"],
        # EMF from both functions (no PutMetricData since issue #16): ~4 KB of log per tick.
        "custom metrics": 14 * PRICE["cw_metric_month"]
        + SECONDS_PER_MONTH / 60 * 4096 / 1e9 * PRICE["cw_logs_gb"],
    }


def original_monthly(vehicles: int, interval: float) -> dict[str, float]:
    """One ~420 B JSON object, S3 event, SQS message, PutItem and PutMetricData per record."""
    records = vehicles * SECONDS_PER_MONTH / interval
    return {
        "S3 requests": records * (PRICE["s3_put"] + PRICE["s3_get"]),
        "SQS": records * 1.2 * PRICE["sqs_request"],  # send; receive and delete in batches of 10
        "Lambda": records / 10 * PRICE["lambda_request"] + records * 0.005 * LAMBDA_GB * PRICE["lambda_gb_s"],
        "DynamoDB vehicle state": records * PRICE["ddb_wru"],
        "CloudWatch (PutMetricData)": records * PRICE["cw_put_metric_data"],
        "raw storage (30 days)": records * 420 * RAW_RETENTION_DAYS / 30 / 1e9 * PRICE["s3_gb_month"],
    }


def table(result: dict[str, Any], interval: float, lambda_ms: float, gz: float, design: Design) -> str:
    m = measured(result)
    previous = replace(PREVIOUS, instances=design.instances)
    heartbeat = replace(HEARTBEAT, instances=design.instances)
    lines = [
        f"Interval {interval:g} s. From the run ({result['after_warm_up']['records']:,} records at "
        f"{result['interval_s']:g} s, {m['objects_per_invocation']:.2f} objects per invocation): "
        f"{m['get_object']:.2f} GetObject, {m['ledger_read_items']:.2f} ledger read items and "
        f"{m['transact_items']:.2f} transaction items per object; {m['ledger_requests']:.2f} ledger "
        f"requests and {m['sqs']:.2f} SQS receive/delete calls per invocation; "
        f"{100 * m['material_share']:.3f} % of readings material (written to the vehicles table); "
        f"{100 * design.hinted_share:.1f} % of readings carrying the vehicle's change flag. "
        f"{design.instances} warm processors, batching window {design.batching_window_s:g} s.",
        "",
        "| vehicles | records / month | this design $/month | previous (every reading checked) $/month "
        "| heartbeat $/month | original design $/month |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for vehicles in (100, 10_000, 1_000_000):
        new, prev, beat = (
            sum(batched_monthly(m, vehicles, interval, lambda_ms, gz, d).values())
            for d in (design, previous, heartbeat)
        )
        old = sum(original_monthly(vehicles, interval).values())
        records = vehicles * SECONDS_PER_MONTH / interval
        lines.append(
            f"| {vehicles:,} | {records:,.0f} | {new:,.2f} | {prev:,.2f} | {beat:,.2f} | {old:,.2f} |"
        )
    new_items, prev_items, beat_items = (
        batched_monthly(m, 1_000_000, interval, lambda_ms, gz, d) for d in (design, previous, heartbeat)
    )
    old_items = original_monthly(1_000_000, interval)
    lines += [
        "",
        "At 1M vehicles, by item ($/month):",
        "",
        "| item | this design | previous | heartbeat | original |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {k} | {new_items.get(k, 0):,.2f} | {prev_items.get(k, 0):,.2f} | {beat_items.get(k, 0):,.2f} "
        f"| {old_items.get(k, 0):,.2f} |"
        for k in dict.fromkeys([*new_items, *old_items])
    ]
    lines.append(
        f"| **total** | **{sum(new_items.values()):,.2f}** | **{sum(prev_items.values()):,.2f}** "
        f"| **{sum(beat_items.values()):,.2f}** | **{sum(old_items.values()):,.2f}** |"
    )
    uncarried = replace(design, carried_writes=False, ledger_reads_every_batch=True, delta_reads=2)
    now, alone, before = (
        requests_per_1000_records(m, 1_000_000, interval, d) for d in (design, uncarried, previous)
    )
    batch = objects_per_invocation(math.ceil(1_000_000 / BATCH_RECORDS) / interval, design.batching_window_s)
    lines += [
        "",
        f"AWS requests per 1,000 records end to end at 1M vehicles ({batch:.1f} objects per invocation):",
        "",
        "| for | this design | before the commit carried the writes | previous |",
        "|---|---:|---:|---:|",
        *(f"| {k} | {v:.2f} | {alone[k]:.2f} | {before[k]:.2f} |" for k, v in now.items()),
        f"| **total** | **{sum(now.values()):.2f}** | **{sum(alone.values()):.2f}** "
        f"| **{sum(before.values()):.2f}** |",
        "",
        "Before the commit carried the writes: vehicle writes by themselves, the ledger read for every "
        "batch, each delta read once per merge part (2).",
    ]
    return "\n".join(lines)


def hinted_share(result: dict[str, Any]) -> float:
    """The share of the run's readings the processor decided on the vehicle's ``changed`` flag (no
    state read); 0 for runs from before the flag."""
    decided = result.get("vehicle_state_per_1000_records", {})
    flag, stored = decided.get("decided_on_changed_flag", 0.0), decided.get("decided_on_stored_state", 0.0)
    return flag / (flag + stored) if flag + stored else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("result", type=Path)
    parser.add_argument("--interval", type=float, default=None, help="default: the run's interval")
    parser.add_argument(
        "--lambda-ms-per-record",
        type=float,
        default=0.05,
        help="handler time per record on AWS (default 0.05: ~0.01 ms CPU from bench/ingest.py's full "
        "path plus ~3 AWS calls of ~10 ms per 1,000-record object)",
    )
    parser.add_argument("--bytes-per-record", type=float, default=42.0, help="gzip NDJSON bytes per record")
    parser.add_argument(
        "--material-from",
        type=Path,
        help="take the share of material readings from this run instead (e.g. one at the modelled "
        "interval: how often a vehicle's state changes materially depends on its simulated time)",
    )
    parser.add_argument(
        "--processor-instances",
        type=int,
        default=POLLERS,
        help=f"warm telemetry processors sharing the objects at random (default {POLLERS}, Lambda's "
        "initial SQS pollers)",
    )
    parser.add_argument(
        "--batching-window",
        type=float,
        default=BATCHING_WINDOW_S,
        help="the event source's MaximumBatchingWindowInSeconds (template parameter "
        "TelemetryBatchingWindowSeconds)",
    )
    parser.add_argument(
        "--delta-reads",
        "--snapshot-parts",
        dest="delta_reads",
        type=int,
        default=1,
        help="GETs of each snapshot delta by the update manager (default 1: fetched once for all merge "
        "parts; earlier figures used --snapshot-parts 2, a GET per part of the default 2)",
    )
    parser.add_argument(
        "--hinted-from",
        type=Path,
        help="take the share of readings decided on the change flag from this run instead",
    )
    parser.add_argument(
        "--hinted-share",
        type=float,
        default=None,
        help="share of readings carrying the change flag (default: the run's, measured)",
    )
    args = parser.parse_args(argv)
    result = json.loads(args.result.read_text())
    if args.material_from:
        other = json.loads(args.material_from.read_text())["after_warm_up"]
        result["material_share"] = other["vehicle_writes"] / max(1, other["records"])
    hinted_run = json.loads(args.hinted_from.read_text()) if args.hinted_from else result
    hinted = args.hinted_share if args.hinted_share is not None else hinted_share(hinted_run)
    design = Design(
        hinted_share=hinted,
        instances=args.processor_instances,
        batching_window_s=args.batching_window,
        delta_reads=args.delta_reads,
    )
    interval = args.interval or result["interval_s"]
    print(table(result, interval, args.lambda_ms_per_record, args.bytes_per_record, design))
    return 0


if __name__ == "__main__":
    sys.exit(main())
