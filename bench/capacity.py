"""Expected request rates at 10k, 100k and 1M vehicles against each AWS service limit, from measured runs.

    .venv/bin/python bench/capacity.py [--result bench/results/pipeline_e2e_10k.json]
        [--campaign bench/results/pipeline_e2e_10k_campaign.json]
        [--fewer-requests bench/results/pipeline_e2e_1k_requests.json] [--fleet-scale FILE ...]

The per-object request counts come from ``bench/pipeline_e2e.py`` results (requests per 1,000 records
and objects per 1,000 records), scaled to each fleet at a 10 s and a 60 s reporting interval. The
settings that shape the rates (event source batch size and window, schedule, key spec) are read from
infra/template.yaml, the cache lifetimes and per-tick bounds from the code. Quotas are in ``QUOTAS``
below, each with its source. Missing optional files are named in the output and skipped.
docs/capacity.md is written from this script's output.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cost_model import hinted_share  # noqa: E402
from fleetota_core.domain.campaign import CampaignSpec  # noqa: E402
from fleetota_core.infra_template import load_template  # noqa: E402
from fleetota_core.services.campaigns.tick_inflight import MAX_EVALUATED_PER_TICK  # noqa: E402
from fleetota_core.services.ingest.registry_cache import REGISTERED_TTL_S  # noqa: E402
from fleetota_core.services.ingest.snapshot_parts import snapshot_workers  # noqa: E402
from fleetota_core.services.ingest.state_cache import DEFAULT_TTL_S as STATE_CACHE_TTL_S  # noqa: E402

FLEETS = (10_000, 100_000, 1_000_000)
INTERVALS = (10.0, 60.0)
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Quota:
    name: str  # as in Service Quotas, or the documented limit's wording
    default: float  # per second (or concurrent, for concurrency)
    adjustable: str
    url: str


# Default AWS quotas (looked up 2026-12-01) from the pages named; the L- codes and the PutMetricData
# and SNS defaults as a Service Quotas listing gives them. Per Region and account unless the name says
# otherwise; new accounts start lower, and Regions differ.
QUOTAS: dict[str, Quota] = {
    "s3_put_prefix": Quota(
        "S3: 3,500 PUT/COPY/POST/DELETE per second per partitioned prefix",
        3_500,
        "no (S3 partitions a busy prefix itself, in 30-60 min)",
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html",
    ),
    "s3_get_prefix": Quota(
        "S3: 5,500 GET/HEAD per second per partitioned prefix",
        5_500,
        "no (as PUT)",
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html",
    ),
    "sqs_inflight": Quota(
        "SQS standard queue: ~120,000 messages in flight (API calls: nearly unlimited)",
        120_000,
        "yes (support case)",
        "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html",
    ),
    "lambda_concurrency": Quota(
        "Lambda: Concurrent executions (L-B99A9384); an SQS event source runs at most 1,000 batches",
        1_000,
        "yes",
        "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html",
    ),
    "ddb_table_write": Quota(
        "DynamoDB: Table-level write throughput limit (L-AB614373), on-demand; a new table starts warm at "
        "4,000 WRU/s",
        40_000,
        "yes",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html",
    ),
    "ddb_table_read": Quota(
        "DynamoDB: Table-level read throughput limit (L-CF0CBE56), on-demand; a new table starts warm at "
        "12,000 RRU/s",
        40_000,
        "yes",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html",
    ),
    "ddb_partition_write": Quota(
        "DynamoDB: 1,000 WRU/s per partition (an item or a hot key cannot exceed it)",
        1_000,
        "no",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html",
    ),
    "cw_put_metric_data": Quota(
        "CloudWatch: Rate of PutMetricData requests (L-8BC498D4)",
        500,
        "yes",
        "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_limits.html",
    ),
    "sns_publish": Quota(
        "SNS: Messages Published per Second (L-F8E2BA85), us-east-1; lower in other Regions",
        30_000,
        "yes",
        "https://docs.aws.amazon.com/general/latest/gr/sns.html",
    ),
    "kms_ecc": Quota(
        "KMS: Cryptographic operations (ECC) request rate (L-DC14942D), shared by all ECC keys",
        300,
        "yes",
        "https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html",
    ),
}

# The local runtime's stand-ins for work CloudWatch does itself (EMF extraction, alarm evaluation),
# and the benchmark's own samples, in result files that do not count them apart yet.
LOCAL_ONLY_OPS = ("cloudwatch.DescribeAlarms", "cloudwatch.GetMetricData", "sqs.GetQueueAttributes")
# Requests on the update manager's schedule in result files that do not count them apart yet.
SCHEDULED_OPS = ("dynamodb.Scan", "dynamodb.Query", "s3.ListObjectsV2")
# Per notified vehicle, measured by bench/update_tick.py (docs/benchmarks.md: 50 Sign, 50 PutObject,
# 101 UpdateItem and 5 PublishBatch per tick of 50 notices): a director signature, a job document,
# a slot reservation on the campaign item, a claim on the deployment, one PublishBatch per 10 notices.
PER_NOTICE = {"kms.Sign": 1.0, "sns.messages": 1.0, "campaign_item_writes": 1.0}
# Counter writes on the campaign item over a deployment's life after the notice: DOWNLOADING,
# VERIFYING, INSTALLING, SUCCEEDED reports (docs/campaigns.md's main path).
REPORT_TRANSITIONS = 4


@dataclass(frozen=True)
class Measured:
    """What one pipeline run measured, per object and per vehicle."""

    source: str
    records_per_object: float
    flush_s: float
    per_object: dict[str, float]  # AWS-path requests (and DynamoDB items) of the processor
    emf_put_metric_data_per_object: float  # the local runtime's PutMetricData for the processor's EMF
    registry_reads_per_vehicle_s: float
    registry_measured: bool
    material_share: float
    object_s: float  # object created -> processed, mean: an upper bound on handler time per object
    notes: tuple[str, ...]
    # Readings decided on the vehicle's ``changed`` flag, without a state read (report by exception).
    hinted_share: float = 0.0


def measured(result: dict[str, Any], source: str) -> Measured:
    per_1000 = result["requests_per_1000_records"]
    objects = result["simulator_put_object_per_1000_records"]
    split = any(k.startswith("update_manager:") for k in per_1000)
    notes = []
    processor: dict[str, float] = {}
    for key, value in per_1000.items():
        if ":" in key or key in LOCAL_ONLY_OPS or key.startswith("cloudwatch.PutMetricData"):
            continue
        if not split and key.split(".items")[0] in SCHEDULED_OPS:
            continue
        processor[key] = (value - per_1000.get(f"update_manager:{key}", 0.0)) / objects
    if not split:
        notes.append(
            f"{source} does not count the update manager apart: its scheduled Scan/Query/List are left "
            "out, its S3 reads and writes are counted as per-object (a slight overstatement)"
        )
    emulated = result.get("local_emulation_requests_per_1000_records", per_1000)
    emf = emulated.get("cloudwatch.PutMetricData", 0.0) - emulated.get(
        "update_manager:cloudwatch.PutMetricData", 0.0
    )
    after = result["after_warm_up"]
    seconds = after["records"] / max(1.0, after["records_per_s"])
    reqs = result["requests_after_warm_up"]
    registry_items = reqs.get(
        "dynamodb.BatchGetItem[registry].items", reqs.get("dynamodb.BatchGetItem.items", 0)
    )
    registry_measured = seconds >= REGISTERED_TTL_S and registry_items > 0
    if not registry_measured:
        notes.append(
            f"{source}: {seconds:.0f} s measured, shorter than the registry cache's "
            f"{REGISTERED_TTL_S:.0f} s: registry reads modelled as one per vehicle per TTL"
        )
    return Measured(
        source=source,
        records_per_object=1000 / objects,
        flush_s=float(result.get("flush_seconds", 2.0)),
        per_object=processor,
        emf_put_metric_data_per_object=emf / objects,
        registry_reads_per_vehicle_s=(
            registry_items / (result["vehicles"] * seconds) if registry_measured else 1 / REGISTERED_TTL_S
        ),
        registry_measured=registry_measured,
        material_share=after["vehicle_writes"] / max(1, after["records"]),
        object_s=after["object_lag_ms"]["mean"] / 1000,
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class Settings:
    """From infra/template.yaml and the code: what shapes the rates besides the fleet."""

    batch_size: int
    batching_window_s: float
    tick_s: float
    director_key_spec: str
    reserved_concurrency: str
    update_timeout_s: float
    # The update manager's snapshot merge runs in this many parts, the deltas fetched once for all
    # of them: what its memory buys (services/ingest/snapshot_parts.py).
    snapshot_parts: int = 1
    max_in_flight_share: float = 0.1
    campaigns: int = 1

    def notices_per_s(self, vehicles: int) -> float:
        spec_max = CampaignSpec.model_fields["max_in_flight"].metadata
        cap = next(m.le for m in spec_max if hasattr(m, "le"))
        in_flight = min(cap, max(1, round(self.max_in_flight_share * vehicles)))
        return self.campaigns * min(in_flight, MAX_EVALUATED_PER_TICK) / self.tick_s


def _value(template: dict[str, Any], value: Any) -> Any:
    """``value``, or the default of the parameter it refers to (``!Ref Name``)."""
    if isinstance(value, dict) and "Ref" in value:
        return template["Parameters"][value["Ref"]]["Default"]
    return value


def template_settings(template: dict[str, Any]) -> Settings:
    resources = template["Resources"]
    mapping = next(r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping")
    rule = next(r for r in resources.values() if r["Type"] == "AWS::Events::Rule")
    rate = re.fullmatch(
        r"rate\((\d+) (minute|minutes|second|seconds)\)", rule["Properties"]["ScheduleExpression"]
    )
    if rate is None:
        raise SystemExit(f"unexpected schedule {rule['Properties']['ScheduleExpression']!r}")
    processor = resources["TelemetryProcessorFunction"]["Properties"]
    manager = resources["UpdateManagerFunction"]["Properties"]
    reserved = processor.get("ReservedConcurrentExecutions")
    return Settings(
        batch_size=int(mapping["Properties"].get("BatchSize", 10)),
        batching_window_s=float(
            _value(template, mapping["Properties"].get("MaximumBatchingWindowInSeconds", 0))
        ),
        tick_s=int(rate.group(1)) * (60.0 if rate.group(2).startswith("minute") else 1.0),
        director_key_spec=resources["DirectorKey"]["Properties"]["KeySpec"],
        reserved_concurrency=str(reserved) if reserved is not None else "none (account pool)",
        update_timeout_s=float(resources["UpdateManagerFunction"]["Properties"]["Timeout"]),
        snapshot_parts=snapshot_workers(
            {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(_value(template, manager["MemorySize"]))}
        ),
    )


@dataclass(frozen=True)
class Row:
    service: str
    operation: str
    rate: float  # per second (concurrent executions for Lambda)
    quota: str  # key of QUOTAS

    @property
    def headroom(self) -> float:
        return QUOTAS[self.quota].default / self.rate if self.rate > 0 else math.inf


def verdict(headroom: float) -> str:
    if headroom < 1:
        return "**breaks**"
    return "within 2x" if headroom < 2 else "ok"


def rows(m: Measured, s: Settings, vehicles: int, interval: float) -> list[Row]:
    """Expected rates for one fleet at one reporting interval."""
    records = vehicles / interval
    per_object = min(m.records_per_object, max(1.0, records * m.flush_s))
    objects = records / per_object
    o = m.per_object
    concurrency = objects * m.object_s  # objects in process at once = handler seconds per second
    instances = max(1, math.ceil(concurrency))
    # Per-instance caches: an instance sees a vehicle every interval x instances, at most once a reading.
    state_reads = (1.0 - m.hinted_share) * min(records, vehicles * instances / STATE_CACHE_TTL_S)
    registry_reads = min(records, m.registry_reads_per_vehicle_s * vehicles * instances)
    counter_txns = o.get("dynamodb.TransactWriteItems[ledger]", o.get("dynamodb.TransactWriteItems", 0.0))
    notices = s.notices_per_s(vehicles)
    return [
        Row("S3", "PUT raw/ objects, all in one hour's prefix (simulator/gateway)", objects, "s3_put_prefix"),
        Row(
            "S3",
            "PUT raw/ if each vehicle sent its own object per reading (original design)",
            records,
            "s3_put_prefix",
        ),
        Row(
            "S3",
            "PUT snapshots/fleet/deltas/ (processor)",
            objects * o.get("s3.PutObject", 0),
            "s3_put_prefix",
        ),
        Row("S3", "GET raw/ (processor)", objects * o.get("s3.GetObject", 0), "s3_get_prefix"),
        Row(
            "S3",
            f"GET snapshots/fleet/deltas/ (update manager: each once, for {s.snapshot_parts} merge parts)",
            objects * o.get("s3.PutObject", 0),
            "s3_get_prefix",
        ),
        Row(
            "SQS",
            "telemetry messages in flight (window + handler time)",
            objects * (s.batching_window_s + m.object_s),
            "sqs_inflight",
        ),
        Row("Lambda", "telemetry processor concurrent executions", concurrency, "lambda_concurrency"),
        Row(
            "DynamoDB",
            "vehicles table writes, material changes, transactional: 2 WRU each (WRU/s)",
            2 * records * m.material_share,
            "ddb_table_write",
        ),
        Row(
            "DynamoDB",
            f"vehicles table state reads, {STATE_CACHE_TTL_S:.0f} s cache per instance (RRU/s)",
            0.5 * state_reads,
            "ddb_table_read",
        ),
        Row(
            "DynamoDB",
            f"registry reads, {REGISTERED_TTL_S:.0f} s cache per instance (RRU/s)",
            0.5 * registry_reads,
            "ddb_table_read",
        ),
        Row(
            "DynamoDB",
            "ledger counters: one partition key, 16 items per hour (WRU/s)",
            2 * objects * counter_txns,
            "ddb_partition_write",
        ),
        Row(
            "DynamoDB",
            "one campaign's item: notice and report counters (WRU/s)",
            notices / s.campaigns * (PER_NOTICE["campaign_item_writes"] + REPORT_TRANSITIONS),
            "ddb_partition_write",
        ),
        Row(
            "DynamoDB",
            "deployments by_status key <campaign>#WAIT#<wave>: create in 60 s (WRU/s)",
            vehicles / 60,
            "ddb_partition_write",
        ),
        Row(
            "CloudWatch",
            "PutMetricData if the processor's EMF went out as API calls (measured locally)",
            objects * m.emf_put_metric_data_per_object,
            "cw_put_metric_data",
        ),
        Row("CloudWatch", "PutMetricData, one per record (original design)", records, "cw_put_metric_data"),
        Row(
            "SNS",
            "job notices (messages; PublishBatch of 10)",
            notices * PER_NOTICE["sns.messages"],
            "sns_publish",
        ),
        Row(
            "KMS",
            f"Sign, director key {s.director_key_spec} (job documents)",
            notices * PER_NOTICE["kms.Sign"],
            "kms_ecc",
        ),
    ]


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def fmt(value: float) -> str:
    if math.isinf(value):
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def fleet_table(m: Measured, s: Settings, vehicles: int) -> str:
    by_interval = [rows(m, s, vehicles, i) for i in INTERVALS]
    head = " | ".join(f"rate/s @{i:g} s | headroom @{i:g} s" for i in INTERVALS)
    lines = [
        f"#### {vehicles:,} vehicles",
        "",
        f"| service | operation | {head} | default quota | where it breaks |",
        "|---|---|" + "---:|---:|" * len(INTERVALS) + "---:|---|",
    ]
    for cells in zip(*by_interval, strict=True):
        first = cells[0]
        worst = min(c.headroom for c in cells)
        numbers = " | ".join(f"{fmt(c.rate)} | {fmt(c.headroom)}" for c in cells)
        lines.append(
            f"| {first.service} | {first.operation} | {numbers} | {fmt(QUOTAS[first.quota].default)} "
            f"| {verdict(worst)} |"
        )
    return "\n".join(lines)


def assumptions(m: Measured, s: Settings) -> str:
    o = m.per_object
    lines = [
        f"From {m.source}: {m.records_per_object:,.0f} records per object (fewer when a fleet sends fewer "
        f"than that in the {m.flush_s:g} s flush), per object {o.get('s3.GetObject', 0):.2f} GetObject, "
        f"{o.get('s3.PutObject', 0):.2f} PutObject, {o.get('sqs.ReceiveMessage', 0):.2f} ReceiveMessage, "
        f"{m.emf_put_metric_data_per_object:.2f} PutMetricData from EMF (local forwarding); "
        f"{100 * m.material_share:.3f} % of readings written to the vehicles table; registry reads "
        f"1 per vehicle per {1 / m.registry_reads_per_vehicle_s:,.0f} s per instance "
        f"({'measured' if m.registry_measured else 'modelled'}); handler time {1000 * m.object_s:.0f} ms per "
        "object (object created -> processed, mean: an upper bound); "
        f"{100 * m.hinted_share:.1f} % of readings decided on the vehicle's change flag, without a state "
        "read (from --hinted-from).",
        f"From infra/template.yaml: event source batch {s.batch_size}, window {s.batching_window_s:g} s; "
        f"reserved concurrency {s.reserved_concurrency}; schedule every {s.tick_s:g} s; director key "
        f"{s.director_key_spec}; the update manager's memory buys {s.snapshot_parts} snapshot merge "
        f"part(s), each delta fetched once for them. From the code: state cache {STATE_CACHE_TTL_S:g} s, "
        "registry cache "
        f"{REGISTERED_TTL_S:g} s (per processor instance; instances = concurrent executions, rounded up), "
        f"at most {MAX_EVALUATED_PER_TICK:,} notices per campaign per tick.",
        f"Assumed: {s.campaigns} campaign(s) at a time with max_in_flight {100 * s.max_in_flight_share:g} "
        "% of the fleet (at most the spec's 100,000), notifying max_in_flight per tick; eventually "
        "consistent reads of items under 4 KB (0.5 RRU), writes under 1 KB (1 WRU, 2 in a transaction).",
        *m.notes,
    ]
    return "\n".join(f"- {line}" for line in lines)


def campaign_check(path: Path) -> str:
    if not path.exists():
        return f"- {shown(path)}: absent, skipped."
    result = json.loads(path.read_text())
    reqs = result["requests_after_warm_up"]
    states = result.get("campaign", {}).get("deployments", {})
    return (
        f"- {shown(path)} (campaign run): {reqs.get('kms.Sign', 0)} kms.Sign and "
        f"{reqs.get('sns.PublishBatch', 0)} sns.PublishBatch after the warm-up minute; deployments {states}. "
        "Per notice this model uses bench/update_tick.py's measured 1 Sign, 1 job document and 0.1 "
        "PublishBatch (docs/benchmarks.md), since the campaign run notified its vehicles before the warm-up."
    )


def fleet_scale(paths: list[Path], tick_timeout_s: float) -> str:
    """bench/fleet_scale.py --json results: campaign create's write rate, each snapshot tick's time."""
    lines: list[str] = []
    for path in paths:
        result = json.loads(path.read_text())
        lines.append(f"{shown(path)} ({result.get('vehicles', 0):,} vehicles, counting clients):")
        lines.append("")
        lines.append(
            "| step | seconds | requests | deployments written/s | headroom on one partition key "
            f"| headroom on the update manager's {tick_timeout_s:g} s timeout |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|")
        for label, step in result.items():
            if not isinstance(step, dict) or "seconds" not in step:
                continue
            written = step.get("targeted")
            rate = written / max(step["seconds"], 1e-3) if written else 0.0
            limit = QUOTAS["ddb_partition_write"].default
            written_cells = f"{fmt(rate)} | {fmt(limit / rate)}" if rate else " | "
            tick = (
                fmt(tick_timeout_s / max(step["seconds"], 1e-3)) if label.startswith("snapshot tick") else ""
            )
            lines.append(
                f"| {label} | {step['seconds']:,.2f} | {sum(step['requests'].values()):,} | {written_cells} "
                f"| {tick} |"
            )
        lines.append("")
    return "\n".join(lines) if lines else "- no bench/results/fleet_scale*.json: skipped."


def report(args: argparse.Namespace) -> str:
    s = replace(
        template_settings(load_template()),
        max_in_flight_share=args.max_in_flight_share,
        campaigns=args.campaigns,
    )
    hinted = hinted_share(json.loads(args.hinted_from.read_text())) if args.hinted_from.exists() else 0.0
    m = replace(measured(json.loads(args.result.read_text()), shown(args.result)), hinted_share=hinted)
    out = ["### Assumptions", "", assumptions(m, s), "", "### Expected rates", ""]
    out += [fleet_table(m, s, v) + "\n" for v in FLEETS]
    out += ["### Other inputs", "", campaign_check(args.campaign)]
    if args.fewer_requests.exists():
        fewer = measured(json.loads(args.fewer_requests.read_text()), shown(args.fewer_requests))
        fewer = replace(fewer, hinted_share=hinted)
        out += ["", f"With {fewer.source}'s request counts instead:", "", assumptions(fewer, s), ""]
        out += [fleet_table(fewer, s, FLEETS[-1])]
    else:
        out += [f"- {shown(args.fewer_requests)}: absent, skipped."]
    out += [
        "",
        fleet_scale(args.fleet_scale or sorted(RESULTS.glob("fleet_scale*.json")), s.update_timeout_s),
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--result", type=Path, default=RESULTS / "pipeline_e2e_10k.json")
    parser.add_argument("--campaign", type=Path, default=RESULTS / "pipeline_e2e_10k_campaign.json")
    parser.add_argument("--fewer-requests", type=Path, default=RESULTS / "pipeline_e2e_1k_requests.json")
    parser.add_argument(
        "--fleet-scale", type=Path, nargs="*", help="default: bench/results/fleet_scale*.json"
    )
    parser.add_argument(
        "--hinted-from",
        type=Path,
        default=RESULTS / "pipeline_e2e_10k_campaign_flag.json",
        help="a run with the vehicles' change flag: the share of readings decided without a state read",
    )
    parser.add_argument("--max-in-flight-share", type=float, default=0.1)
    parser.add_argument("--campaigns", type=int, default=1, help="campaigns notifying at the same time")
    args = parser.parse_args(argv)
    args.result, args.campaign, args.fewer_requests = (
        p.resolve() for p in (args.result, args.campaign, args.fewer_requests)
    )
    print(report(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
