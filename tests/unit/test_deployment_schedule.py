"""The tick's schedule in the ledger: roster slices across chunks, due hints in time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters import deployment_schedule
from fleetota_core.adapters.deployment_schedule import DeploymentSchedule
from fleetota_core.domain.deployment import Lane

ACTIVE, WAIT = Lane.ACTIVE, Lane.WAIT

if TYPE_CHECKING:
    import pytest


class FakeLedger:
    """Just the DynamoDB calls the schedule makes, on a dict keyed by (pk, sk)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[str] = []

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("BatchWriteItem")
        [(_table, requests)] = RequestItems.items()
        assert len(requests) <= 25
        keys = [r.get("PutRequest", {}).get("Item") or r["DeleteRequest"]["Key"] for r in requests]
        assert len({(k["pk"]["S"], k["sk"]["S"]) for k in keys}) == len(keys), "duplicate keys in a batch"
        for request in requests:
            if "PutRequest" in request:
                item = request["PutRequest"]["Item"]
                self.items[(item["pk"]["S"], item["sk"]["S"])] = item
            else:
                key = request["DeleteRequest"]["Key"]
                self.items.pop((key["pk"]["S"], key["sk"]["S"]), None)
        return {}

    def put_item(self, TableName: str, Item: dict[str, Any]) -> None:
        self.items[(Item["pk"]["S"], Item["sk"]["S"])] = Item

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("BatchGetItem")
        [(table, request)] = RequestItems.items()
        found = [
            self.items[key] for k in request["Keys"] if (key := (k["pk"]["S"], k["sk"]["S"])) in self.items
        ]
        return {"Responses": {table: found}}

    def query(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("Query")
        values = kwargs["ExpressionAttributeValues"]
        pk, upto = values[":pk"]["S"], values[":now"]["S"]
        after = kwargs.get("ExclusiveStartKey", {}).get("sk", {}).get("S", "")
        keys = sorted(sk for p, sk in self.items if p == pk and after < sk <= upto)
        page = keys[: kwargs["Limit"]]
        out: dict[str, Any] = {"Items": [self.items[(pk, sk)] for sk in page]}
        if len(keys) > len(page):
            out["LastEvaluatedKey"] = {"pk": {"S": pk}, "sk": {"S": page[-1]}}
        return out


def ts(minute: int) -> datetime:
    return datetime(2026, 11, 26, 20, minute, tzinfo=UTC)


def test_a_roster_slice_spans_chunks_and_stops_at_the_end_of_the_wave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deployment_schedule, "ROSTER_CHUNK", 4)
    ledger = FakeLedger()
    schedule = DeploymentSchedule(ledger, "ledger")
    vins = [f"VIN{i:02d}" for i in range(10)]
    schedule.put_roster("c1", 2, vins)
    assert len([k for k in ledger.items if k[0] == "roster#c1#002"]) == 3
    assert schedule.roster("c1", 2, 3, 3) == ["VIN03", "VIN04", "VIN05"]
    assert schedule.roster("c1", 2, 8, 5) == ["VIN08", "VIN09"]
    assert schedule.roster("c1", 1, 0, 5) == []  # another wave is another partition


def test_due_hints_come_oldest_first_up_to_now_and_page_after_the_last_one_seen() -> None:
    ledger = FakeLedger()
    schedule = DeploymentSchedule(ledger, "ledger")
    schedule.hint_many("c1", ACTIVE, [(ts(5), "B"), (ts(1), "A"), (ts(9), "LATER"), (ts(5), "B")])
    schedule.hint("c1", WAIT, ts(1), "W")
    assert schedule.due("c1", ACTIVE, ts(5), limit=10) == [(ts(1), "A"), (ts(5), "B")]
    assert schedule.due("c1", ACTIVE, ts(5), limit=1) == [(ts(1), "A")]
    assert schedule.due("c1", ACTIVE, ts(5), limit=10, after=(ts(1), "A")) == [(ts(5), "B")]
    assert schedule.due("c1", WAIT, ts(5), limit=10) == [(ts(1), "W")]


def test_dropped_hints_are_gone_and_every_hint_expires_a_week_after_its_time() -> None:
    ledger = FakeLedger()
    schedule = DeploymentSchedule(ledger, "ledger")
    schedule.hint_many("c1", ACTIVE, [(ts(1), f"V{i}") for i in range(30)])
    assert ledger.calls.count("BatchWriteItem") == 2  # 25 per request
    schedule.drop_many("c1", ACTIVE, [(ts(1), f"V{i}") for i in range(29)])
    assert schedule.due("c1", ACTIVE, ts(2), limit=100) == [(ts(1), "V29")]
    [item] = ledger.items.values()
    hinted_at = datetime(2026, 11, 26, 20, 1, tzinfo=UTC)
    assert int(item["expires_at"]["N"]) == int((hinted_at + timedelta(days=7)).timestamp())
