"""The registry adapter keeps to DynamoDB's real limits, which moto does not enforce."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from ingest_fakes import registered, vin

from fleetota_core.adapters.registry_changes import FEED_KEY, RegistryChangeFeed, feed_item
from fleetota_core.adapters.vehicle_registry import VehicleRegistry, registry_item
from fleetota_core.domain.registry_changes import MAX_CHANGES, RegistryChanges
from fleetota_core.errors import ConfigurationError


class RecordingDynamo:
    """Answers like DynamoDB, refusing what AWS refuses: >25 writes or >100 keys per request."""

    def __init__(self, unprocessed_once: bool = False) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.write_sizes: list[int] = []
        self.get_sizes: list[int] = []
        self.unprocessed_once = unprocessed_once
        self.ledger: dict[tuple[str, str], dict[str, Any]] = {}
        self.feed_puts = 0
        self.conflict_once = False

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        (_table, requests), *_ = RequestItems.items()
        assert len(requests) <= 25, "ValidationException: at most 25 requests"
        self.write_sizes.append(len(requests))
        for r in requests:
            self.items[r["PutRequest"]["Item"]["vin"]["S"]] = r["PutRequest"]["Item"]
        return {}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        (table, request), *_ = RequestItems.items()
        keys = request["Keys"]
        assert len(keys) <= 100, "ValidationException: at most 100 keys"
        self.get_sizes.append(len(keys))
        if self.unprocessed_once:
            self.unprocessed_once = False
            return {"Responses": {table: []}, "UnprocessedKeys": {table: {"Keys": keys}}}
        found = [self.items[k["vin"]["S"]] for k in keys if k["vin"]["S"] in self.items]
        if request.get("ProjectionExpression") == "vin":
            found = [{"vin": item["vin"]} for item in found]
        return {"Responses": {table: found}}

    def get_item(self, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        item = self.ledger.get((Key["pk"]["S"], Key["sk"]["S"]))
        return {} if item is None else {"Item": item}

    def put_item(self, TableName: str, Item: dict[str, Any], ConditionExpression: str, **kw: Any) -> dict:
        assert item_size(Item) <= 400 * 1024, "ValidationException: Item size has exceeded the maximum"
        key = (Item["pk"]["S"], Item["sk"]["S"])
        current = self.ledger.get(key)
        expected = kw.get("ExpressionAttributeValues", {}).get(":v", {}).get("N")
        if self.conflict_once:  # another writer got there first
            self.conflict_once = False
            at = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)
            current = self.ledger[key] = feed_item(RegistryChanges(0, 99, {vin(99): at}))
        if (current is None) != (expected is None) or (current and current["version"]["N"] != expected):
            error = {"Error": {"Code": "ConditionalCheckFailedException", "Message": "failed"}}
            raise ClientError(error, "PutItem")
        self.ledger[key] = Item
        self.feed_puts += 1
        return {}


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it: names and values in UTF-8, numbers about 1 byte per 2
    digits plus 1, and 1 byte per map or list element plus 3 per map or list."""

    def size(value: dict[str, Any]) -> int:
        (kind, v), *_ = value.items()
        if kind == "S":
            return len(v.encode())
        if kind == "N":
            return (len(v.lstrip("-").replace(".", "")) + 1) // 2 + 1
        if kind == "M":
            return 3 + sum(len(k.encode()) + size(x) + 1 for k, x in v.items())
        raise AssertionError(kind)

    return sum(len(name.encode()) + size(value) for name, value in item.items())


def test_writes_go_in_requests_of_at_most_25():
    dynamo = RecordingDynamo()
    registry = VehicleRegistry(dynamo, "registry", RegistryChangeFeed(dynamo, "ledger"))
    assert registry.put_many(registered(n) for n in range(60)) == 60
    assert dynamo.write_sizes == [25, 25, 10]
    assert dynamo.get_sizes == [60]  # which VINs exist: one projected BatchGetItem per 100


def test_lookups_ask_each_distinct_vin_once_in_requests_of_at_most_100_and_retry_unprocessed_keys():
    dynamo = RecordingDynamo(unprocessed_once=True)
    dynamo.items = {vin(n): registry_item(registered(n)) for n in range(150)}
    found = VehicleRegistry(dynamo, "registry").get_many([vin(n) for n in range(250)] * 2)
    assert set(found) == {vin(n) for n in range(150)}
    assert dynamo.get_sizes == [100, 100, 100, 50]  # the first 100 twice: once unprocessed


def test_an_item_that_is_not_a_registered_vehicle_is_left_out():
    dynamo = RecordingDynamo()
    dynamo.items = {vin(1): {"vin": {"S": vin(1)}, "model": {"S": "no key"}}}
    assert VehicleRegistry(dynamo, "registry").get_many([vin(1)]) == {}


def test_an_identity_read_straight_from_typed_attributes_is_the_codecs_identity():
    from fleetota_core.adapters.vehicle_registry import _decoded_identity, identity_from_item

    base = {"vin": {"S": vin(1)}, "make": {"S": "Tesla"}, "model": {"S": "Model 3"},
            "model_year": {"N": "2023"}, "hw_rev": {"S": "HW3"}, "region": {"S": "us-west"},
            "status": {"S": "active"}}  # fmt: skip
    odd = [{"N": "2023"}, {"N": "2023.0"}, {"N": "-7"}, {"N": "1e3"}, {"N": "2023.5"}, {"S": "2023"},
           {"S": "x"}, {"S": ""}, {"BOOL": True}, {"NULL": True}, {"S": "retired"},
           {"L": [{"S": "a"}]}]  # fmt: skip
    items = [base] + [{**base, name: value} for name in base for value in odd]
    items += [{k: v for k, v in base.items() if k != name} for name in base]
    for item in items:
        assert identity_from_item(item) == _decoded_identity(item), item
    assert (
        identity_from_item(base).active
        and not identity_from_item({**base, "status": {"S": "retired"}}).active
    )
    assert identity_from_item({**base, "model_year": {"N": "2023.0"}}).model_year == 2023
    assert identity_from_item({**base, "region": {"NULL": True}}).region == "None"  # as the codec reads it


def test_rewriting_existing_registrations_records_them_in_the_change_feed_but_new_ones_do_not():
    dynamo = RecordingDynamo()
    registry = VehicleRegistry(dynamo, "registry", RegistryChangeFeed(dynamo, "ledger"))
    registry.put_many(registered(n) for n in range(3))
    assert dynamo.feed_puts == 0  # brand-new VINs: processors keep "not registered" 30 s only

    registry.put_many([registered(1, status="retired"), registered(2, region="eu-west"), registered(3)])
    feed = RegistryChangeFeed(dynamo, "ledger").read()
    assert set(feed.changed_ms) == {vin(1), vin(2)} and feed.version == 1
    assert dynamo.items[vin(1)]["status"] == {"S": "retired"}


def test_a_registry_opened_without_its_change_feed_refuses_to_write():
    with pytest.raises(ConfigurationError, match="change feed"):
        VehicleRegistry(RecordingDynamo(), "registry").put_many([registered(1)])


def test_a_feed_write_that_loses_a_race_reads_again_and_keeps_the_other_writers_change():
    dynamo = RecordingDynamo()
    feed = RegistryChangeFeed(dynamo, "ledger")
    feed.record([vin(1)], datetime(2026, 12, 1, tzinfo=UTC))
    dynamo.conflict_once = True
    written = feed.record([vin(2)], datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC))
    assert set(written.changed_ms) == {vin(99), vin(2)} and written.version == 100
    assert dynamo.ledger[(FEED_KEY["pk"]["S"], FEED_KEY["sk"]["S"])]["version"] == {"N": "100"}


def test_a_full_feed_stays_under_dynamodbs_400_kb_item_limit_and_one_more_change_bumps_the_epoch():
    dynamo = RecordingDynamo()
    feed = RegistryChangeFeed(dynamo, "ledger")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    vins = [f"1HGCM82633A{n:06d}" for n in range(MAX_CHANGES)]
    full = feed.record(vins, now)
    size = item_size(feed_item(full))
    print(f"\nfull change feed: {MAX_CHANGES} VINs, {size} bytes")
    assert full.epoch == 0 and len(full.changed_ms) == MAX_CHANGES and size < 150 * 1024
    bumped = feed.record(["1HGCM82633A999999"], now)
    assert (bumped.epoch, len(bumped.changed_ms)) == (1, 0)
