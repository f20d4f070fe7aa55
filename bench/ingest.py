"""Hot-path throughput of the telemetry processor, beside the original design, in one run on one core.

    .venv/bin/python bench/ingest.py [--vehicles 10000] [--steps 3] [--rounds 5]

Three figures, all single-threaded in this process, over the same simulator records:

* hot path: gunzip -> parse -> validate -> account (``decode_object`` + ``prepare``: counts, lag
  histogram, each vehicle's newest reading) on 1,000-record gzip NDJSON objects as the simulator
  uploads them. Enrichment runs only for readings that will be written (material or heartbeat), so
  it is measured apart: the same path also enriching every vehicle's newest reading, the worst case.
* full path: the real ``ingest_object`` with the real AWS adapters on counting fake clients
  (ledger check, batch get, conditional writes, commit). The first reading of every vehicle is
  warm-up; the later ones are timed and counted, so immaterial readings are skipped as in steady state.
* identity: the registry check per record (``check_identity``), and the signature verification of
  an OTA report, in microseconds per record (plain readings) and per report (signed OTA reports).
* original design: one JSON object per record, ``json.loads`` + pydantic validation + enrichment, a
  PutItem and a PutMetricData per record; the AWS calls are counted, not sent.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import io
import json
import random
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fleetota_core.adapters.ledger import DynamoLedger
from fleetota_core.adapters.registry_changes import RegistryChangeFeed
from fleetota_core.adapters.telemetry_objects import S3Quarantine, S3TelemetryObjects
from fleetota_core.adapters.vehicle_registry import VehicleRegistry, registry_item
from fleetota_core.adapters.vehicle_state import DynamoVehicleStates, state_attributes, to_attr
from fleetota_core.domain.enrichment import ReleaseCatalog, ReleaseSummary, enrich
from fleetota_core.domain.telemetry import OtaReport, OtaStatus, TelemetryRecord
from fleetota_core.services.ingest.decode import decode_lines, decode_object
from fleetota_core.services.ingest.identity import check_identity
from fleetota_core.services.ingest.ports import ObjectRef
from fleetota_core.services.ingest.registry_cache import RegistryCache
from fleetota_core.services.ingest.state_cache import CachedVehicleStates
from fleetota_core.services.ingest.telemetry_object import IngestPorts, ingest_object, prepare
from simulator.fleet import generate_fleet
from simulator.record import encode
from simulator.vehicle_keys import registrations

TARGET = 300_000
BATCH = 1000


class CountingClient:
    """Stands in for a boto3 client: counts each call by operation and answers like a small stack.

    The vehicles table is kept (put_item stores, batch_get_item returns), so the full path sees
    stored states and skips immaterial readings as it does in steady state.
    """

    def __init__(self, name: str, calls: Counter[str], bodies: dict[str, bytes] | None = None) -> None:
        self.name = name
        self.calls = calls
        self.bodies = bodies or {}
        self.items: dict[str, dict[str, Any]] = {}

    def __getattr__(self, operation: str) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls[f"{self.name}.{operation}"] += 1
            if operation == "get_object":
                return {"Body": io.BytesIO(self.bodies[kwargs["Key"]])}
            if operation == "put_item" and kwargs["TableName"] == "vehicles":
                self.items[kwargs["Item"]["vin"]["S"]] = kwargs["Item"]
            if operation == "batch_get_item":
                (table, request), *_ = kwargs["RequestItems"].items()
                found = [self.items[k["vin"]["S"]] for k in request["Keys"] if k["vin"]["S"] in self.items]
                return {"Responses": {table: found}}
            return {}

        return call


FLEETS: dict[tuple[int, int], list[Any]] = {}


def bench_fleet(vehicles: int, seed: int = 42) -> list[Any]:
    """The simulated fleet, keys assigned (and kept, so the registry matches every run)."""
    if (vehicles, seed) not in FLEETS:
        FLEETS[vehicles, seed] = generate_fleet(vehicles, seed)
        registrations(FLEETS[vehicles, seed])
    return FLEETS[vehicles, seed]


def registry_client() -> CountingClient:
    """A counting DynamoDB client whose registry table holds every bench fleet."""
    client = CountingClient("dynamodb", Counter())
    client.items = {r.vin: registry_item(r) for fleet in FLEETS.values() for r in registrations(fleet)}
    return client


def simulated_lines(vehicles: int, steps: int, seed: int = 42) -> list[str]:
    """``steps`` readings of each vehicle, 10 s apart, as the simulator encodes them."""
    rng = random.Random(seed)
    fleet = [_copy(v) for v in bench_fleet(vehicles, seed)]
    start = time.time() - 10 * steps
    lines = []
    for step in range(steps):
        for vehicle in fleet:
            vehicle.seq += 1
            vehicle.lat += rng.uniform(-0.002, 0.002)
            vehicle.lon += rng.uniform(-0.002, 0.002)
            lines.append(encode(vehicle, start + 10 * step))
    return lines


def _copy(vehicle: Any) -> Any:
    """A fresh copy of a fleet vehicle (same identity and key), so each use starts from seq 0."""
    clone = object.__new__(type(vehicle))
    for name in type(vehicle).__slots__:
        if hasattr(vehicle, name):
            setattr(clone, name, getattr(vehicle, name))
    return clone


def identity_cost(vehicles: int, rounds: int) -> dict[str, float]:
    """CPU microseconds of ``check_identity``: per plain reading, and per signed OTA report."""
    fleet = [_copy(v) for v in bench_fleet(vehicles)]
    registered = {r.vin: r for r in registrations(fleet)}

    class Registry:
        def get_many(self, vins: Any) -> dict[str, Any]:
            return {vin: registered[vin] for vin in vins if vin in registered}

    at = time.time() - 5
    report = OtaReport(
        campaign_id="c1", deployment_id="c1.x", status=OtaStatus.DOWNLOADING, target_version="9.0.0"
    )
    plain = decode_lines([encode(v, at).encode() for v in fleet], datetime.now(UTC))
    signed = decode_lines([encode(v, at, report).encode() for v in fleet], datetime.now(UTC))
    if check_identity(signed, Registry()).counters or len(signed.records) != len(fleet):
        raise SystemExit("every bench report must verify; the benchmark data is wrong")
    per_plain = statistics.median(timed(lambda: check_identity(plain, Registry()), rounds)) / len(fleet)
    per_signed = statistics.median(timed(lambda: check_identity(signed, Registry()), rounds)) / len(fleet)
    return {
        "identity_check_us_per_record": round(per_plain * 1e6, 2),
        "identity_check_us_per_signed_ota_report": round(per_signed * 1e6, 1),
    }


def catalog_for(lines: list[str]) -> ReleaseCatalog:
    models = {json.loads(line)["model"] for line in lines[:2000]}
    return ReleaseCatalog([ReleaseSummary("9.0.0", frozenset(models), frozenset())])


def objects_of(lines: list[str]) -> list[bytes]:
    return [
        gzip.compress(("\n".join(lines[i : i + BATCH]) + "\n").encode(), compresslevel=6, mtime=0)
        for i in range(0, len(lines), BATCH)
    ]


def timed(fn: Any, rounds: int) -> list[float]:
    """CPU seconds of this (single-threaded) process per round, so other load on the machine does
    not count against the figure; GC runs between rounds, as it would between Lambda batches."""
    times = []
    for _ in range(rounds):
        gc.collect()
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return times


def hot_path(bodies: list[bytes], catalog: ReleaseCatalog | None) -> int:
    """Per object: gunzip, parse, validate, count, lag histogram, newest per vehicle; with a catalog
    also enrich every vehicle's newest reading (the most enrichment an object can need)."""
    now = datetime.now(UTC)
    stored = 0
    for body in bodies:
        prepared = prepare(decode_object("raw/x.ndjson.gz", body, now), now)
        if catalog is not None:
            for reading in prepared.newest.values():
                enrich(reading, catalog, now)
        stored += prepared.counters["stored"]
    return stored


def full_path(steps: list[list[bytes]], catalog: ReleaseCatalog, calls: Counter[str]) -> tuple[int, float]:
    """The real ingest on counting clients; the first step (every vehicle new) is warm-up, untimed.

    Returns the records stored and the CPU seconds of the timed steps.
    """
    keys = {f"raw/{s}-{i}.ndjson.gz": body for s, bodies in enumerate(steps) for i, body in enumerate(bodies)}
    s3 = CountingClient("s3", Counter(), keys)
    dynamodb = CountingClient("dynamodb", Counter())
    registry = registry_client()
    ports = IngestPorts(
        objects=S3TelemetryObjects(s3),
        quarantine=S3Quarantine(s3, "telemetry"),
        # As the processor wires it: the per-process state cache (AWS-mode TTL) before the table.
        vehicles=CachedVehicleStates(DynamoVehicleStates(dynamodb, "vehicles")),
        ledger=DynamoLedger(dynamodb, "ledger"),
        ota_sink=lambda reports: {},
        # As the processor wires it: lookups kept by the warm process, following the change feed.
        registry=RegistryCache(VehicleRegistry(registry, "registry"), RegistryChangeFeed(registry, "ledger")),
    )
    now = datetime.now(UTC)
    stored, cpu = 0, 0.0
    for step, bodies in enumerate(steps):
        if step == 1:
            s3.calls, dynamodb.calls, registry.calls = calls, calls, calls  # count the steady state only
        started = time.process_time()
        for i in range(len(bodies)):
            if i % 10 == 0:
                ports.registry.clear()  # type: ignore[attr-defined] - a new invocation (SQS batch of 10)
            key = f"raw/{step}-{i}.ndjson.gz"
            outcome = ingest_object(ObjectRef("telemetry", key, etag=key), ports, catalog, now)
            stored += outcome.stored if step else 0
        cpu += time.process_time() - started if step else 0.0
    return stored, cpu


def original_design(single_objects: list[bytes], catalog: ReleaseCatalog, calls: Counter[str]) -> int:
    """One S3 object, one PutItem and one PutMetricData per record, as first specified."""
    keys = {f"raw/{i}.json": body for i, body in enumerate(single_objects)}
    s3 = CountingClient("s3", calls, keys)
    dynamodb = CountingClient("dynamodb", calls)
    cloudwatch = CountingClient("cloudwatch", calls)
    stored = 0
    for key in keys:
        now = datetime.now(UTC)
        record = TelemetryRecord.model_validate(json.loads(s3.get_object(Bucket="t", Key=key)["Body"].read()))
        state = enrich(record, catalog, now)
        item = {name: to_attr(value) for name, value in state_attributes(state, now).items()}
        dynamodb.put_item(TableName="vehicles", Item={"vin": {"S": state.vin}, **item})
        cloudwatch.put_metric_data(
            Namespace="Telemetry",
            MetricData=[{"MetricName": "DataPoints", "Value": 1.0, "Unit": "Count", "Timestamp": now}],
        )
        stored += 1
    return stored


def per_thousand(calls: Counter[str], records: int, rounds: int) -> dict[str, float]:
    return {op: round(n * 1000 / (records * rounds), 2) for op, n in sorted(calls.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--original-records", type=int, default=5_000, help="records for the original design")
    args = parser.parse_args(argv)

    lines = simulated_lines(args.vehicles, args.steps)
    catalog = catalog_for(lines)
    bodies = objects_of(lines)
    singles = [line.encode() for line in lines[: args.original_records]]
    records = len(lines)
    if hot_path(bodies, catalog) != records:
        raise SystemExit("every simulator record must validate; the benchmark data is wrong")

    hot = timed(lambda: hot_path(bodies, None), args.rounds)
    enriched = timed(lambda: hot_path(bodies, catalog), args.rounds)
    full_calls: Counter[str] = Counter()
    per_step = [objects_of(lines[i : i + args.vehicles]) for i in range(0, len(lines), args.vehicles)]
    full_runs = [full_path(per_step, catalog, full_calls) for _ in range(max(2, args.rounds // 2))]
    full_records = full_runs[0][0]
    original_calls: Counter[str] = Counter()
    original = timed(lambda: original_design(singles, catalog, original_calls), max(2, args.rounds // 2))

    identity = identity_cost(min(args.vehicles, 2000), args.rounds)
    hot_rate = records / statistics.median(hot)
    enriched_rate = records / statistics.median(enriched)
    full_rate = full_records / statistics.median(cpu for _, cpu in full_runs)
    original_rate = len(singles) / statistics.median(original)
    result = {
        "records": records,
        "objects": len(bodies),
        "records_per_object": BATCH,
        "hot_path_records_per_s": round(hot_rate),
        "hot_path_best_records_per_s": round(records / min(hot)),
        "hot_path_enriching_every_vehicle_records_per_s": round(enriched_rate),
        "full_path_records_per_s": round(full_rate),
        "original_design_records_per_s": round(original_rate),
        **identity,
        "ratio_hot_path_vs_original": round(hot_rate / original_rate, 1),
        "ratio_full_path_vs_original": round(full_rate / original_rate, 1),
        "target_records_per_s": TARGET,
        "meets_target": hot_rate >= TARGET,
        "aws_calls_per_1000_records": {
            "full_path": per_thousand(full_calls, full_records, len(full_runs)),
            "original_design": per_thousand(original_calls, len(singles), len(original)),
        },
    }
    print(json.dumps(result, indent=2))
    print(
        f"hot path {hot_rate:,.0f} records/s "
        f"(target {TARGET:,}: {'met' if hot_rate >= TARGET else 'MISSED'}); "
        f"enriching every vehicle {enriched_rate:,.0f}/s; full path {full_rate:,.0f}/s; "
        f"original design {original_rate:,.0f}/s; "
        f"identity check {identity['identity_check_us_per_record']} us/record, "
        f"{identity['identity_check_us_per_signed_ota_report']} us/signed OTA report; "
        f"ratio {hot_rate / original_rate:.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
