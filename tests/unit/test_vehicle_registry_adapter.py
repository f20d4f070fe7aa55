"""The registry adapter keeps to DynamoDB's real limits, which moto does not enforce."""

from __future__ import annotations

from typing import Any

from ingest_fakes import registered, vin

from fleetota_core.adapters.vehicle_registry import VehicleRegistry, registry_item


class RecordingDynamo:
    """Answers like DynamoDB, refusing what AWS refuses: >25 writes or >100 keys per request."""

    def __init__(self, unprocessed_once: bool = False) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.write_sizes: list[int] = []
        self.get_sizes: list[int] = []
        self.unprocessed_once = unprocessed_once

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
        return {"Responses": {table: found}}


def test_writes_go_in_requests_of_at_most_25():
    dynamo = RecordingDynamo()
    assert VehicleRegistry(dynamo, "registry").put_many(registered(n) for n in range(60)) == 60
    assert dynamo.write_sizes == [25, 25, 10]


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
