"""The telemetry pipeline on the local stack: S3 -> SQS -> telemetry processor -> DynamoDB, S3, CloudWatch."""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.firmware_store import FirmwareStore
from fleetota_core.adapters.ledger import DynamoLedger
from fleetota_core.adapters.registry_changes import FEED_KEY
from fleetota_core.adapters.vehicle_state import DynamoVehicleStates
from fleetota_core.services.campaigns.releases import publish_release
from fleetota_core.services.ingest.batch import FirmwareCatalog, telemetry_pipeline
from fleetota_core.services.ingest.ports import ObjectRef
from fleetota_core.services.ingest.stats import telemetry_stats
from simulator.fleet import generate_fleet
from simulator.record import encode
from simulator.vehicle_keys import register_fleet

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integration.conftest import LocalStack

KEY = "raw/dt={day}/hour={hour}/batch {n:04d}.ndjson.gz"
MALFORMED = [
    b"{not json at all",
    b'{"schema_version": 1, "vin": 17}',
    b"[1, 2, 3]",
]


def _fleet_lines(stack: LocalStack, count: int, at: float, seed: int = 7) -> tuple[list[Any], list[bytes]]:
    fleet = generate_fleet(count, seed)
    register_fleet(stack.clients, stack.resources, fleet)  # provisioned before they report
    lines = []
    for vehicle in fleet:
        vehicle.seq += 1
        lines.append(encode(vehicle, at).encode())
    return fleet, lines


def _put(stack: LocalStack, n: int, lines: list[bytes], now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    key = KEY.format(day=f"{now:%Y-%m-%d}", hour=f"{now:%H}", n=n)
    body = gzip.compress(b"\n".join(lines) + b"\n")
    stack.clients.s3.put_object(Bucket=stack.resources.telemetry_bucket, Key=key, Body=body)
    return key


def _stats(stack: LocalStack) -> dict[str, Any]:
    return telemetry_stats(stack.clients, stack.resources)


def test_simulator_records_with_malformed_lines_mixed_in_add_up_and_every_reason_is_recorded(
    stack: LocalStack,
):
    now = time.time()
    _, lines = _fleet_lines(stack, 40, now - 1)
    _put(stack, 1, lines[:20] + MALFORMED[:2])
    _put(stack, 2, [MALFORMED[2], *lines[20:]])

    result = stack.runtime.drain(timeout=30)

    assert (result.received, result.failed) == (2, 0)
    stats = _stats(stack)
    assert stats["received"] == 43 and stats["stored"] == 40 and stats["quarantined"] == 3
    assert stats["received"] == stats["stored"] + stats["quarantined"]
    assert stats["quarantined_by_reason"] == {"malformed_json": 1, "schema_violation": 2}
    quarantined = stack.clients.s3.list_objects_v2(
        Bucket=stack.resources.telemetry_bucket, Prefix="quarantine/records/"
    )["Contents"]
    rows = [
        json.loads(line)
        for obj in quarantined
        for line in stack.clients.s3.get_object(Bucket=stack.resources.telemetry_bucket, Key=obj["Key"])[
            "Body"
        ]
        .read()
        .splitlines()
    ]
    assert len(rows) == 3 and all(row["reason"] and row["detail"] for row in rows)


def test_resending_the_same_s3_event_changes_nothing(stack: LocalStack):
    _, lines = _fleet_lines(stack, 10, time.time() - 1)
    _put(stack, 1, lines)
    sent: list[str] = []
    real = stack.runtime.function("telemetry_processor").real_handler()

    def capture(event: dict[str, Any], context: Any) -> Any:
        sent.extend(r["body"] for r in event["Records"])
        return real(event, context)

    runtime = stack.make_runtime(handlers={"telemetry_processor": capture})
    runtime.drain(timeout=20)
    before = _stats(stack)
    vehicles = DynamoVehicleStates(stack.clients.dynamodb, stack.resources.vehicles_table)
    states_before = {v: vehicles.get(v) for v in [json.loads(line)["vin"] for line in lines]}

    stack.clients.sqs.send_message(QueueUrl=stack.resources.telemetry_queue_url, MessageBody=sent[0])
    runtime.drain(timeout=20)

    after = _stats(stack)
    assert after["duplicates"] == {"objects": 1, "records": 10}
    assert {k: after[k] for k in ("received", "stored", "quarantined")} == {
        k: before[k] for k in ("received", "stored", "quarantined")
    }
    assert {v: vehicles.get(v) for v in states_before} == states_before


def test_a_reordered_batch_leaves_each_vehicle_at_its_newest_reading(stack: LocalStack):
    fleet = generate_fleet(5, 11)
    register_fleet(stack.clients, stack.resources, fleet)
    start = time.time() - 120
    lines = []
    for step in range(6):
        for vehicle in fleet:
            vehicle.seq += 1
            vehicle.lat += 0.02  # > 1 km per step, so each reading is material
            lines.append(encode(vehicle, start + 10 * step).encode())
    newest = {v.vin: v.seq for v in fleet}
    _put(stack, 1, list(reversed(lines[len(lines) // 2 :])))
    _put(stack, 2, list(reversed(lines[: len(lines) // 2])))  # the older half arrives last

    stack.runtime.drain(timeout=30)

    vehicles = DynamoVehicleStates(stack.clients.dynamodb, stack.resources.vehicles_table)
    assert {vin: vehicles.get(vin)["last_seq"] for vin in newest} == newest


def test_a_corrupt_gzip_object_is_quarantined_and_no_message_cycles(stack: LocalStack):
    bucket = stack.resources.telemetry_bucket
    key = "raw/dt=2026-11-26/hour=10/corrupt.ndjson.gz"
    stack.clients.s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(b'{"a": 1}\n' * 50)[:-9])
    runtime = stack.make_runtime(visibility_timeout=0)

    first = runtime.drain(timeout=20)

    assert (first.received, first.succeeded) == (1, 1)
    assert runtime.drain(timeout=5).received == 0
    stats = _stats(stack)
    assert stats["objects_quarantined_by_reason"] == {"corrupt_gzip": 1}
    refs = stack.clients.s3.list_objects_v2(Bucket=bucket, Prefix="quarantine/objects/")["Contents"]
    body = stack.clients.s3.get_object(Bucket=bucket, Key=refs[0]["Key"])["Body"].read()
    assert json.loads(body)["source"] == f"s3://{bucket}/{key}"


def test_an_injected_transient_error_fails_the_item_and_recovers_on_retry(stack: LocalStack):
    from botocore.exceptions import ClientError

    _, lines = _fleet_lines(stack, 8, time.time() - 1)
    _put(stack, 1, lines)
    real = stack.runtime.function("telemetry_processor").real_handler()
    pipeline = telemetry_pipeline(stack.settings)  # the same object the handler uses
    # The commit: the ledger transaction that also writes the vehicles.
    original = pipeline.ports.ledger.commit_carrying
    calls = {"n": 0}

    def flaky(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            from fleetota_core.adapters.aws_errors import translate

            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
            raise translate(ClientError(error, "TransactWriteItems"), "committing")
        return original(*args)

    pipeline.ports.ledger.commit_carrying = flaky
    try:
        runtime = stack.make_runtime(handlers={"telemetry_processor": real}, visibility_timeout=0)
        first = runtime.poll()
        assert (first.received, first.failed) == (1, 1)
        assert _stats(stack)["received"] == 0
        second = runtime.drain(timeout=20)
        assert (second.received, second.succeeded) == (1, 1)
    finally:
        pipeline.ports.ledger.commit_carrying = original
    stats = _stats(stack)
    assert (stats["received"], stats["stored"], stats["dlq"]) == (8, 8, 0)


def test_cloudwatch_data_points_sum_equals_the_records_stored(stack: LocalStack):
    now = time.time()
    _, lines = _fleet_lines(stack, 30, now - 1)
    _put(stack, 1, lines[:12] + MALFORMED[:1])
    _put(stack, 2, lines[12:])
    stack.runtime.drain(timeout=30)

    end = datetime.now(UTC) + timedelta(minutes=2)
    data = stack.clients.cloudwatch.get_metric_statistics(
        Namespace="Telemetry",
        MetricName="DataPoints",
        StartTime=end - timedelta(minutes=30),
        EndTime=end,
        Period=3600,
        Statistics=["Sum"],
    )["Datapoints"]
    assert sum(d["Sum"] for d in data) == _stats(stack)["stored"] == 30
    latency = stack.clients.cloudwatch.get_metric_statistics(
        Namespace="Telemetry",
        MetricName="ProcessingLatency",
        StartTime=end - timedelta(minutes=30),
        EndTime=end,
        Period=3600,
        Statistics=["SampleCount"],
    )["Datapoints"]
    assert sum(d["SampleCount"] for d in latency) == 2  # one per object, dimensionless


@contextmanager
def counted_requests(stack: LocalStack) -> Iterator[Counter[tuple[str, str]]]:
    """(operation, bucket or table) of every request the stack's clients make inside."""
    calls: Counter[tuple[str, str]] = Counter()

    def count(event_name: str, params: dict[str, Any] | None = None, **_: Any) -> None:
        params = params or {}
        target = params.get("Bucket") or params.get("TableName") or ",".join(params.get("RequestItems", {}))
        key = params.get("Key")
        if isinstance(key, dict) and key.get("pk") == FEED_KEY["pk"]:
            target = f"{target} (registry change feed)"  # read at most every 10 s, not per batch
        calls[(event_name.removeprefix("before-parameter-build."), str(target))] += 1

    clients = [stack.clients.client(service) for service in ("s3", "dynamodb", "sqs")]
    for client in clients:
        client.meta.events.register("before-parameter-build.*.*", count, unique_id="count-requests")
    try:
        yield calls
    finally:
        for client in clients:
            client.meta.events.unregister("before-parameter-build.*.*", unique_id="count-requests")


def test_a_batch_of_objects_costs_one_get_object_each_and_one_ledger_read_and_write_in_all(
    stack: LocalStack,
):
    """Issue #16: in steady state the processor reads each object once and the ledger at most once
    per invocation (for the messages SQS delivers again), and commits the whole batch in one
    transaction; an object delivered twice in the batch counts once."""
    _, lines = _fleet_lines(stack, 40, time.time() - 2)
    _put(stack, 0, lines[:10])
    stack.runtime.drain(timeout=20)  # warm: the release catalog and the registry are cached now
    for n in range(1, 4):
        _put(stack, n, lines[10 * n : 10 * n + 10])
    queue = stack.resources.telemetry_queue_url
    first = stack.clients.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=5)
    [message] = first["Messages"]
    stack.clients.sqs.send_message(QueueUrl=queue, MessageBody=message["Body"])  # S3 said it twice
    stack.clients.sqs.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )

    with counted_requests(stack) as calls:
        result = stack.runtime.poll(wait_seconds=1)

    assert (result.invocations, result.received, result.failed) == (1, 4, 0)
    bucket, ledger = stack.resources.telemetry_bucket, stack.resources.ledger_table
    assert calls[("s3.GetObject", bucket)] == 3
    assert calls[("dynamodb.BatchGetItem", ledger)] == 1
    assert calls[("dynamodb.TransactWriteItems", "")] == 1, calls
    # The only single ledger read: the stack's generation, watched in local mode only (local reset).
    assert calls[("dynamodb.GetItem", ledger)] == 1
    stats = _stats(stack)
    assert stats["stored"] == 40 and stats["duplicates"]["objects"] == 1 and stats["objects"] == 4


def test_committing_a_batch_leaves_out_an_object_another_delivery_committed_first(stack: LocalStack):
    ledger = DynamoLedger(stack.clients.dynamodb, stack.resources.ledger_table)
    now = datetime.now(UTC)
    old, new = (ObjectRef(stack.resources.telemetry_bucket, f"raw/{n}.gz", etag=n) for n in ("a", "b"))
    assert ledger.commit_many([(old, {"received": 5, "stored": 5})], now) == []

    assert ledger.commit_many(
        [(old, {"received": 5, "stored": 5}), (new, {"received": 2, "stored": 2})], now
    ) == [old]

    assert ledger.processed_many([old, new]) == {old.identity: 5, new.identity: 2}
    assert sum(hour.get("stored", 0) for hour in ledger.counters().values()) == 7


def test_a_warm_release_catalog_reload_lists_the_manifests_and_reads_only_a_new_one(stack: LocalStack):
    fleet, lines = _fleet_lines(stack, 3, time.time() - 1)
    _put(stack, 1, lines)
    stack.runtime.drain(timeout=20)  # the fleet's models are known now
    model = fleet[0].model
    catalog = FirmwareCatalog(FirmwareStore(stack.clients.s3, stack.resources.firmware_bucket))
    publish_release(b"image-1", "1.0.0", [model], [], None, "first", "alice", stack.ports)
    assert [r.version for r in catalog().releases] == ["1.0.0"]

    with counted_requests(stack) as unchanged:
        assert [r.version for r in catalog().releases] == ["1.0.0"]
    publish_release(b"image-2", "1.1.0", [model], [], None, "second", "alice", stack.ports)
    with counted_requests(stack) as one_new:
        assert sorted(r.version for r in catalog().releases) == ["1.0.0", "1.1.0"]

    firmware = stack.resources.firmware_bucket
    assert (unchanged[("s3.ListObjectsV2", firmware)], unchanged[("s3.GetObject", firmware)]) == (1, 0)
    assert (one_new[("s3.ListObjectsV2", firmware)], one_new[("s3.GetObject", firmware)]) == (1, 1)
