"""The registry change feed on the local stack: a retirement with ``fleetota vehicle provision`` reaches a
warm processor within 10 s, while the vehicles nobody changed cost it no registry read."""

from __future__ import annotations

import csv
import gzip
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.registry_changes import RegistryChangeFeed
from fleetota_core.cli import main
from fleetota_core.services.ingest.batch import TelemetryPipeline
from fleetota_core.services.ingest.ports import ObjectRef
from fleetota_core.services.ingest.registry_cache import RegistryCache
from simulator.fleet import generate_fleet
from simulator.record import encode
from simulator.vehicle_keys import registrations

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fleetota_core.domain.vehicle_identity import RegisteredVehicle
    from tests.integration.conftest import LocalStack

COLUMNS = ["vin", "make", "model", "model_year", "hw_rev", "region", "public_key", "status"]


def provision(path: Path, vehicles: list[RegisteredVehicle], status: str = "active") -> int:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for v in vehicles:
            writer.writerow(
                {**v.model_dump(include=set(COLUMNS)), "public_key": v.public_key_pem, "status": status}
            )
    return main(["vehicle", "provision", "--csv", str(path)])


@contextmanager
def registry_keys_asked(stack: LocalStack) -> Iterator[list[list[str]]]:
    """The VINs of every BatchGetItem on the registry table made inside."""
    asked: list[list[str]] = []
    table = stack.resources.registry_table

    def record(params: dict[str, Any] | None = None, **_: Any) -> None:
        request = (params or {}).get("RequestItems", {}).get(table)
        if request:
            asked.append(sorted(key["vin"]["S"] for key in request["Keys"]))

    events = stack.clients.dynamodb.meta.events
    events.register("before-parameter-build.dynamodb.BatchGetItem", record, unique_id="registry-keys")
    try:
        yield asked
    finally:
        events.unregister("before-parameter-build.dynamodb.BatchGetItem", unique_id="registry-keys")


def test_a_vehicle_retired_with_the_cli_is_quarantined_by_a_warm_processor_within_10_s(
    stack: LocalStack, tmp_path: Path, capsys: Any
):
    # Given three vehicles provisioned with the CLI, and a warm processor that accepted all three
    fleet = generate_fleet(3, 11)
    registered = registrations(fleet)
    assert provision(tmp_path / "fleet.csv", registered) == 0
    feed = RegistryChangeFeed(stack.clients.dynamodb, stack.resources.ledger_table)
    assert feed.read().version == 0  # brand-new VINs are not in the feed
    pipeline = TelemetryPipeline.for_stack(stack.clients, stack.resources, watch_generation=False)
    cache = pipeline.ports.registry
    assert isinstance(cache, RegistryCache)
    now = [0.0]
    cache.clock = lambda: now[0]

    def ingest(name: str) -> Any:
        for vehicle in fleet:
            vehicle.seq += 1
        body = gzip.compress("\n".join(encode(v, time.time() - 1) for v in fleet).encode() + b"\n")
        key = f"raw/registry-feed/{name}.ndjson.gz"
        put = stack.clients.s3.put_object(Bucket=stack.resources.telemetry_bucket, Key=key, Body=body)
        [outcome] = pipeline.ingest(
            [ObjectRef(stack.resources.telemetry_bucket, key, put["ETag"].strip('"'))]
        )
        return outcome

    assert ingest("a").stored == 3

    # When the operator retires the first vehicle with the CLI
    assert provision(tmp_path / "retire.csv", registered[:1], status="retired") == 0
    assert set(feed.read().changed_ms) == {fleet[0].vin}

    # Then within 10 s its records are quarantined unknown_vehicle, on the first object after the
    # processor's next feed read, and the registry is asked about that vehicle alone.
    now[0] = 10.0
    with registry_keys_asked(stack) as asked:
        outcome = ingest("b")
    assert (outcome.stored, outcome.counters["quarantined__unknown_vehicle"]) == (2, 1)
    assert asked == [[fleet[0].vin]]
    assert cache.feed_reads == 2
    capsys.readouterr()
