"""A new campaign's deployment items, encoded from one template, are deployment_to_item's to the byte."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from fleetota_core.adapters.campaign_items import (
    deployment_from_item,
    deployment_to_item,
    new_deployment_items,
)
from fleetota_core.adapters.deployment_store import DeploymentStore
from fleetota_core.domain.creation import NewDeployments
from fleetota_core.domain.deployment import DeploymentState
from fleetota_core.domain.enrolment import Candidate
from fleetota_core.domain.vin import with_check_digit

MODELS = ("Tesla Model 3", "Model Y", "", "Škoda Enyaq", "ID.4 \u2014 Pro")
REVISIONS = ("HW3", "HW4", "rev-b", "")
VERSIONS = ("1.0.0", "1.10.3", "2.0.0-rc.1", "0.0.1", "9.99.999")
REGIONS = ("us-west", "eu-central", "unknown")


def new_deployments(n: int, seed: int, start: datetime, created: datetime, waves: int) -> NewDeployments:
    rng = random.Random(seed)
    vehicles = [
        Candidate(with_check_digit(f"5YJ3E1EA0P{i:07d}"), rng.choice(MODELS), rng.choice(REVISIONS),
                  rng.choice(REGIONS), rng.choice(VERSIONS))
        for i in range(n)
    ]  # fmt: skip
    return NewDeployments(
        f"c20261130-{seed:08x}", start, created, vehicles, sorted(rng.randrange(waves) for _ in range(n))
    )


def as_sent(items: list[dict[str, Any]]) -> bytes:
    # What a BatchWriteItem request carries: the items serialised in their attribute order.
    return json.dumps(items, ensure_ascii=False).encode()


def test_varied_campaigns_items_equal_deployment_to_items_to_the_byte() -> None:
    now = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    cases = [
        (1, now, now, 1),
        (300, now, now, 3),
        (500, now + timedelta(days=2, microseconds=7), now, 5),  # a scheduled start
        (200, datetime(2026, 12, 1, 1, 30, tzinfo=timezone(timedelta(hours=-8))), now, 2),  # not UTC
        (100, datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30))),
         datetime(2026, 11, 30, 18, 0, tzinfo=timezone(timedelta(hours=1))), 12),
    ]  # fmt: skip
    for seed, (n, start, created, waves) in enumerate(cases):
        new = new_deployments(n, seed, start, created, waves)
        fast = list(new_deployment_items(new))
        each = [deployment_to_item(d) for d in new.deployments()]
        assert fast == each
        assert as_sent(fast) == as_sent(each)
        assert [deployment_from_item(item) for item in fast] == list(new.deployments())


def test_each_deployment_is_pending_in_its_wave_with_the_vehicles_version() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    new = new_deployments(50, 7, now, now, 3)
    for item, vehicle, wave in zip(new_deployment_items(new), new.vehicles, new.waves, strict=True):
        d = deployment_from_item(item)
        assert (d.vin, d.wave, d.state) == (vehicle.vin, wave, DeploymentState.PENDING)
        assert (d.from_version, d.model, d.hw_rev) == (
            vehicle.firmware_version,
            vehicle.model,
            vehicle.hw_rev,
        )
        assert (d.next_action_at, d.created_at, d.attempt, d.version) == (now, now, 0, 0)


def test_a_vehicle_with_a_missing_value_gets_the_item_deployment_to_item_gives_it() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    new = new_deployments(6, 3, now, now, 2)
    vehicles = list(new.vehicles)
    vehicles[0] = vehicles[0]._replace(hw_rev=None)  # type: ignore[arg-type]  # the first: no template
    vehicles[3] = vehicles[3]._replace(model=None)  # type: ignore[arg-type]
    new = NewDeployments(new.campaign_id, now, now, vehicles, new.waves)
    fast = list(new_deployment_items(new))
    assert as_sent(fast) == as_sent([deployment_to_item(d) for d in new.deployments()])
    assert "hw_rev" not in fast[0] and "model" not in fast[3] and "model" in fast[4]


class Writes:
    def __init__(self) -> None:
        self.requests: list[list[dict[str, Any]]] = []

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        (_table, requests), *_ = RequestItems.items()
        assert len(requests) <= 25, "ValidationException: at most 25 requests"
        self.requests.append(requests)
        return {}


def test_the_store_writes_a_new_campaign_as_put_many_writes_its_deployments() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    new = new_deployments(1234, 11, now, now, 4)
    fast, each = Writes(), Writes()
    assert DeploymentStore(fast, "deployments").put_new(new) == 1234
    assert DeploymentStore(each, "deployments").put_many(new.deployments()) == 1234

    def sent(writes: Writes) -> list[bytes]:
        return sorted(as_sent([r["PutRequest"]["Item"] for r in chunk]) for chunk in writes.requests)

    assert sent(fast) == sent(each) and len(fast.requests) == 50  # 49 of 25 and one of 9
