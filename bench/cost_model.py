"""Monthly AWS cost of the telemetry path at 100, 10k and 1M vehicles, from a measured e2e run.

    .venv/bin/python bench/cost_model.py RESULT.json [--interval 10] [--markdown]

RESULT.json is what ``bench/pipeline_e2e.py --out`` wrote. Request counts per 1,000 records come
from that run (the simulator's PutObject, every request the processor and the local runtime made,
and the DynamoDB items they touched); the original design's counts are by construction (one object,
one S3 event, one PutItem and one PutMetricData per record). Prices: us-east-1 list prices, on-demand
DynamoDB after the November 2024 cut, no free tier, no data transfer (it all stays in the region).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

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
RAW_RETENTION_DAYS = 30


def per_record_new(result: dict[str, Any], lambda_ms_per_record: float) -> dict[str, float]:
    """Dollars per record for the batched design, from the measured per-1000-record counts."""
    r = {k: v / 1000 for k, v in result["requests_per_1000_records"].items()}
    objects = result["simulator_put_object_per_1000_records"] / 1000
    get_items = r.get("dynamodb.GetItem.items", r.get("dynamodb.GetItem", 0))
    batch_keys = r.get("dynamodb.BatchGetItem.items", 100 * r.get("dynamodb.BatchGetItem", 0))
    transact_items = r.get("dynamodb.TransactWriteItems.items", 2 * r.get("dynamodb.TransactWriteItems", 0))
    puts = r.get("dynamodb.PutItem", 0) + r.get("dynamodb.UpdateItem", 0)
    return {
        "S3 requests": objects * PRICE["s3_put"]
        + r.get("s3.PutObject", 0) * PRICE["s3_put"]
        + r.get("s3.GetObject", 0) * PRICE["s3_get"],
        # S3 -> SQS (one message per object) plus the event source's receives and deletes.
        "SQS": (objects + r.get("sqs.ReceiveMessage", 0) + r.get("sqs.DeleteMessageBatch", 0))
        * PRICE["sqs_request"],
        "Lambda": r.get("invocations", objects / 5) * PRICE["lambda_request"]
        + lambda_ms_per_record / 1000 * LAMBDA_GB * PRICE["lambda_gb_s"],
        # Ledger reads are consistent (1 RRU); vehicle reads eventually consistent (0.5 RRU);
        # a transaction item costs 2 WRU; a vehicle item (~0.6 KB) 1 WRU.
        "DynamoDB": get_items * PRICE["ddb_rru"]
        + batch_keys * 0.5 * PRICE["ddb_rru"]
        + transact_items * 2 * PRICE["ddb_wru"]
        + puts * PRICE["ddb_wru"],
        "CloudWatch": 1.0 / 1000 / 1024 / 1024 * PRICE["cw_logs_gb"],  # ~1 KB of EMF per object
    }


def per_record_original() -> dict[str, float]:
    """One S3 object, S3 event, SQS message, PutItem and PutMetricData per record."""
    return {
        "S3 requests": PRICE["s3_put"] + PRICE["s3_get"],
        "SQS": (1 + 0.1 + 0.1) * PRICE["sqs_request"],  # send; receive and delete in batches of 10
        "Lambda": 0.1 * PRICE["lambda_request"] + 0.005 * LAMBDA_GB * PRICE["lambda_gb_s"],
        "DynamoDB": PRICE["ddb_wru"],
        "CloudWatch": PRICE["cw_put_metric_data"],
    }


def fixed_monthly(vehicles: int, bytes_per_record: float, records_per_month: float) -> dict[str, float]:
    """Costs outside the per-record path: the fleet snapshot, raw storage, custom metrics."""
    ticks = SECONDS_PER_MONTH / 60
    scans = SECONDS_PER_MONTH / 1800  # a full rebuild every 30 minutes
    scan_rru = max(1.0, vehicles * 600 / 4096) * 0.5  # one projected scan of ~0.6 KB items
    deltas = records_per_month / 1000 / 10  # one per invocation of ~10 objects of 1,000 records
    stored_gb = records_per_month * bytes_per_record * RAW_RETENTION_DAYS / 30 / 1e9
    return {
        "fleet snapshot (deltas, merge per minute, scan per 30 min)": scans * scan_rru * PRICE["ddb_rru"]
        + deltas * (PRICE["s3_put"] + PRICE["s3_get"])
        + ticks * (PRICE["s3_put"] + 2 * PRICE["s3_get"]),
        "raw storage (30 days)": stored_gb * PRICE["s3_gb_month"],
        "custom metrics (14)": 14 * PRICE["cw_metric_month"] + ticks * PRICE["cw_put_metric_data"],
    }


def table(result: dict[str, Any], interval: float, lambda_ms: float, bytes_per_record: float) -> str:
    records = result["after_warm_up"]["records"]
    new, old = per_record_new(result, lambda_ms), per_record_original()
    lines = [
        f"Interval {interval:g} s; measured over {records:,} records; Lambda {lambda_ms:.3f} ms/record.",
        "",
        "| vehicles | records / month | batched design $/month | original design $/month | ratio |",
        "|---:|---:|---:|---:|---:|",
    ]
    breakdown = []
    for vehicles in (100, 10_000, 1_000_000):
        per_month = vehicles * SECONDS_PER_MONTH / interval
        fixed = fixed_monthly(vehicles, bytes_per_record, per_month)
        new_total = sum(new.values()) * per_month + sum(fixed.values())
        # The original stores each record as its own ~420 B JSON object: 10x the gzip bytes.
        old_total = sum(old.values()) * per_month + fixed["raw storage (30 days)"] * 10
        lines.append(
            f"| {vehicles:,} | {per_month:,.0f} | {new_total:,.2f} | {old_total:,.2f} | "
            f"{old_total / new_total:,.0f}x |"
        )
        if vehicles == 1_000_000:
            breakdown = [
                f"| {k} | {v * per_month:,.2f} | {old.get(k, 0) * per_month:,.2f} |" for k, v in new.items()
            ]
            breakdown += [f"| {k} | {v:,.2f} | |" for k, v in fixed.items()]
    lines += [
        "",
        "At 1M vehicles, by service ($/month):",
        "",
        "| item | batched | original |",
        "|---|---:|---:|",
        *breakdown,
    ]
    return "\n".join(lines)


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
    parser.add_argument(
        "--bytes-per-record", type=float, default=42.0, help="gzip NDJSON bytes per record (simulator: ~42)"
    )
    args = parser.parse_args(argv)
    result = json.loads(args.result.read_text())
    interval = args.interval or result["interval_s"]
    print(table(result, interval, args.lambda_ms_per_record, args.bytes_per_record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
