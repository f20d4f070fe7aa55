"""Issue #16, no full-table scans: the snapshot's sweep reads the vehicles table in parallel-scan
segments, and targeting reads the snapshot (plus projected registry reads), never a table scan."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fleetota_core.adapters import vehicle_directory
from fleetota_core.adapters.dynamo_items import to_item
from fleetota_core.adapters.fleet_snapshot_reads import read_fleet_snapshot
from fleetota_core.adapters.vehicle_registry import VehicleRegistry
from fleetota_core.adapters.vehicle_segments import VehicleTableSegments
from fleetota_core.domain.campaign import CampaignSpec, WaveSpec
from fleetota_core.domain.vehicle_identity import RegistrationStatus
from fleetota_core.services.campaigns.create import create_campaign
from fleetota_core.services.campaigns.preview import preview_campaign
from fleetota_core.services.ingest.fleet_health import refresh_fleet
from tests.integration.test_campaign_services import MODEL, publish, seed_vehicles, vin

if TYPE_CHECKING:
    import pytest

    from tests.integration.conftest import LocalStack


def requests_by_operation(stack: LocalStack) -> Counter[str]:
    calls: Counter[str] = Counter()

    def count(params, model, **_):
        tables = [params["TableName"]] if "TableName" in params else list(params.get("RequestItems", {}))
        for table in tables:
            calls[f"{model.name}:{table}"] += 1

    stack.clients.dynamodb.meta.events.register("provide-client-params.dynamodb.*", count)
    return calls


def test_the_segments_of_a_parallel_scan_are_disjoint_cover_the_table_and_resume_from_their_key(
    stack: LocalStack,
):
    vins = seed_vehicles(stack, 40)
    segments = VehicleTableSegments(stack.clients.dynamodb, stack.resources.vehicles_table)
    read = [segments.read(s, 4, None, max_pages=10) for s in range(4)]
    found = [item["vin"] for r in read for item in r.items]
    assert sorted(found) == sorted(vins)  # each vehicle in exactly one segment
    assert all(r.next_key is None for r in read)
    assert {"model", "firmware_version", "last_ts"} <= set(read[0].items[0])


def test_a_new_snapshot_is_built_by_a_sweep_and_campaign_targeting_reads_it_without_a_table_scan(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
):
    # A fleet this small is scanned (a few pages); the snapshot path is the large fleets'.
    monkeypatch.setattr(vehicle_directory, "SMALL_FLEET_ROWS", 0)
    # Given vehicles in the table and the registry, one of them retired, and the first tick's snapshot
    vins = seed_vehicles(stack, 12)
    retired = VehicleRegistry.of_stack(stack.clients.dynamodb, stack.resources)
    item = retired.get_many([vins[0]])[vins[0]]
    retired.put_many([item.model_copy(update={"status": RegistrationStatus.RETIRED})])
    now = datetime.now(UTC)
    rows = refresh_fleet(stack.clients, stack.resources, now=now).rows
    assert set(rows) == set(vins)
    snapshot = read_fleet_snapshot(stack.clients, stack.resources)
    assert snapshot is not None and snapshot.rebuilt_at == now.isoformat() and snapshot.sweep["todo"] == []
    publish(stack)
    spec = CampaignSpec(name="t", release_version="2.0.0", waves=(WaveSpec(percent=100),))

    # When a campaign is previewed and created
    calls = requests_by_operation(stack)
    preview = preview_campaign(spec, stack.ports, now)
    campaign = create_campaign(spec, "alice", stack.ports, "test", now=now)

    # Then no table is scanned, the retired vehicle is left out, and registry reads are projected gets
    vehicles, registry = stack.resources.vehicles_table, stack.resources.registry_table
    assert not calls[f"Scan:{vehicles}"] and not calls[f"Scan:{registry}"], calls
    assert preview.matched == campaign.total == 11
    assert calls[f"BatchGetItem:{registry}"] == 2  # one projected get per 100 VINs, per targeting read


def test_a_vehicle_written_to_the_table_without_a_delta_reaches_the_snapshot_with_the_next_sweep(
    stack: LocalStack,
):
    seed_vehicles(stack, 3)
    now = datetime.now(UTC)
    refresh_fleet(stack.clients, stack.resources, now=now)
    # A lost delta: the vehicle's state is in the table only.
    late = {"vin": vin(999), "make": "Tesla", "model": MODEL, "model_year": 2023, "hw_rev": "HW4",
            "firmware_version": "1.0.0", "region": "us-west", "last_ts": now.isoformat(), "last_ts_ms": 1,
            "last_seq": 1}  # fmt: skip
    stack.clients.dynamodb.put_item(TableName=stack.resources.vehicles_table, Item=to_item(late))
    assert (
        late["vin"] not in refresh_fleet(stack.clients, stack.resources, now=now + timedelta(minutes=1)).rows
    )
    rows = refresh_fleet(stack.clients, stack.resources, now=now + timedelta(minutes=30)).rows
    assert rows[late["vin"]]["firmware_version"] == "1.0.0"
