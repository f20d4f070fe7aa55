"""The deployments table: one item per (campaign, vehicle), and its ``by_status`` index.

``campaign_status`` buckets an item for the operator actions that list a state: waiting deployments
per wave (``<campaign>#WAIT#<wave>``, for abort), in-flight ones (``<campaign>#ACTIVE``), finished
ones in SUCCEEDED / FAILED / CLOSED buckets (rollback, retry-failed). The tick does not query it:
each state change moves the campaign's counters (see ``transition``) and, when it needs a later look
(lease, timeout, re-check, retry), first writes a hint to the schedule (see ``deployment_schedule``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.aws_errors import conditional_write, reading
from fleetota_core.adapters.deployment_schedule import ACTIVE, WAIT, DeploymentSchedule
from fleetota_core.adapters.dynamo_items import from_item, set_clause, to_attr, to_item
from fleetota_core.domain.deployment import FAILED_OUTCOMES, IN_FLIGHT, WAITING, DeploymentState
from fleetota_core.errors import TransientAWSError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

S = DeploymentState
STATUS_INDEX = "by_status"


def bucket(campaign_id: str, state: DeploymentState, wave: int) -> str:
    if state in WAITING:
        return f"{campaign_id}#WAIT#{wave:03d}"
    if state in IN_FLIGHT:
        return f"{campaign_id}#ACTIVE"
    if state in (S.FAILED, S.TIMED_OUT):
        return f"{campaign_id}#FAILED"
    if state is S.SUCCEEDED:
        return f"{campaign_id}#SUCCEEDED"
    return f"{campaign_id}#CLOSED"


def counter_deltas(old: DeploymentState, new: DeploymentState, wave: int) -> dict[str, int]:
    """What one transition adds to the campaign item's counters (see ``CampaignCounters``)."""
    deltas: dict[str, int] = {}

    def add(name: str, amount: int) -> None:
        deltas[name] = deltas.get(name, 0) + amount

    if old is not new:
        add(f"n_{old}", -1)
        add(f"n_{new}", 1)
    add("in_flight", (new in IN_FLIGHT) - (old in IN_FLIGHT))
    add(f"w{wave}_ok", (new is S.SUCCEEDED) - (old is S.SUCCEEDED))
    add(f"w{wave}_fail", (new in FAILED_OUTCOMES) - (old in FAILED_OUTCOMES))
    add(f"w{wave}_wait", (new in WAITING) - (old in WAITING))
    return {k: v for k, v in deltas.items() if v}


class Outcome(Enum):
    APPLIED = "applied"
    LOST_RACE = "lost_race"  # someone else changed the deployment first
    AT_CAPACITY = "at_capacity"  # the campaign already has max_in_flight deployments in flight


@dataclass
class Transition:
    campaign_id: str
    vin: str
    wave: int
    old_state: DeploymentState
    old_version: int
    new_state: DeploymentState
    next_action_at: str | None = None
    sets: dict[str, Any] = field(default_factory=dict)
    removes: tuple[str, ...] = ()
    max_in_flight: int | None = None  # enforce the cap when this transition enters flight
    hinted: bool = False  # the caller already wrote the schedule hint (in a batch)


class DeploymentStore:
    def __init__(self, dynamodb: Any, table: str, campaigns_table: str, schedule: DeploymentSchedule) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.campaigns_table = campaigns_table
        self.schedule = schedule

    def put_many(self, items: Iterable[dict[str, Any]]) -> int:
        """Write a campaign's new deployments 25 at a time, then each wave's roster in the order given.

        All of a campaign's deployments come in one call, in rollout order: the roster positions
        are the order of ``items`` within each wave.
        """
        count = 0
        chunk: list[dict[str, Any]] = []
        rosters: dict[tuple[str, int], list[str]] = {}
        for item in items:
            rosters.setdefault((item["campaign_id"], int(item["wave"])), []).append(item["vin"])
            chunk.append({"PutRequest": {"Item": to_item(item)}})
            count += 1
            if len(chunk) == 25:
                self._write_chunk(chunk)
                chunk = []
        if chunk:
            self._write_chunk(chunk)
        for (campaign_id, wave), vins in rosters.items():
            self.schedule.put_roster(campaign_id, wave, vins)
        return count

    def _write_chunk(self, chunk: list[dict[str, Any]]) -> None:
        request = {self.table: chunk}
        for attempt in range(8):
            with reading(f"table {self.table}"):
                request = self.dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems", {})
            if not request:
                return
            time.sleep(0.05 * 2**attempt)
        raise TransientAWSError(f"DynamoDB left {len(request[self.table])} deployments unwritten; retry")

    def get(self, campaign_id: str, vin: str) -> dict[str, Any] | None:
        with reading(f"deployment {campaign_id}/{vin}"):
            response = self.dynamodb.get_item(
                TableName=self.table,
                Key={"campaign_id": {"S": campaign_id}, "vin": {"S": vin}},
                ConsistentRead=True,
            )
        return from_item(response.get("Item"))

    def get_many(self, campaign_id: str, vins: list[str]) -> dict[str, dict[str, Any]]:
        """The campaign's deployments for ``vins`` (consistent read) by VIN; missing ones left out."""
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(vins), 100):
            keys = [
                {"campaign_id": {"S": campaign_id}, "vin": {"S": v}}
                for v in dict.fromkeys(vins[start : start + 100])
            ]
            request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                with reading(f"table {self.table}"):
                    response = self.dynamodb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    plain = from_item(item) or {}
                    out[plain["vin"]] = plain
                request = response.get("UnprocessedKeys") or {}
        return out

    def in_bucket(self, bucket_key: str) -> Iterator[dict[str, Any]]:
        paginator = self.dynamodb.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table,
            IndexName=STATUS_INDEX,
            KeyConditionExpression="campaign_status = :b",
            ExpressionAttributeValues={":b": {"S": bucket_key}},
        )
        with reading(f"table {self.table}"):
            for page in pages:
                yield from (from_item(item) for item in page.get("Items", []))

    def for_campaign(self, campaign_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        pages = self.dynamodb.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="campaign_id = :c",
            ExpressionAttributeValues={":c": {"S": campaign_id}},
        )
        with reading(f"table {self.table}"):
            for page in pages:
                out.extend(from_item(item) for item in page.get("Items", []))
                if limit is not None and len(out) >= limit:
                    return out[:limit]
        return out

    def for_vin(self, vin: str) -> list[dict[str, Any]]:
        with reading(f"table {self.table}"):
            page = self.dynamodb.query(
                TableName=self.table,
                IndexName="by_vin",
                KeyConditionExpression="vin = :v",
                ExpressionAttributeValues={":v": {"S": vin}},
            )
        return [from_item(item) for item in page.get("Items", [])]

    def transition(self, change: Transition) -> Outcome:
        """Apply one state change if the deployment is as expected, then its counter deltas.

        Three single-item writes, not a transaction: the campaign item is a hot atomic counter that
        concurrent Lambdas update (transactions on it would conflict), and moto copies the whole table
        for every transaction. Order: reserve an in-flight slot (capped), claim the deployment
        (conditional), add the other deltas. A crash between writes can leave a counter off by one;
        ``recount_campaign`` repairs it.
        """
        deltas = counter_deltas(change.old_state, change.new_state, change.wave)
        reserve = change.max_in_flight is not None and deltas.get("in_flight", 0) > 0
        if reserve:
            # One capped write reserves the slot and moves the counters; undone if the claim loses.
            deltas = {"in_flight": deltas.pop("in_flight"), **deltas}
            if not self._add_counters(change.campaign_id, deltas, change.max_in_flight):
                return Outcome.AT_CAPACITY
        self._hint(change)
        if not conditional_write(self.dynamodb.update_item, **self._deployment_update(change)):
            if reserve:
                self._add_counters(change.campaign_id, {k: -v for k, v in deltas.items()})
            return Outcome.LOST_RACE
        if deltas and not reserve:
            self._add_counters(change.campaign_id, deltas)
        return Outcome.APPLIED

    def _hint(self, change: Transition) -> None:
        # Before the conditional write: if that write loses or the process dies, the hint is stale
        # (dropped when due); the other way round a deployment could wait with nothing to find it.
        if change.hinted or change.next_action_at is None:
            return
        if change.new_state in IN_FLIGHT or change.new_state in WAITING:
            lane = ACTIVE if change.new_state in IN_FLIGHT else WAIT
            self.schedule.hint(change.campaign_id, lane, change.next_action_at, change.vin)

    def _add_counters(self, campaign_id: str, deltas: dict[str, int], below: int | None = None) -> bool:
        names = {f"#c{i}": name for i, name in enumerate(deltas)}
        values = {f":c{i}": to_attr(delta) for i, delta in enumerate(deltas.values())}
        kwargs: dict[str, Any] = {
            "TableName": self.campaigns_table,
            "Key": {"campaign_id": {"S": campaign_id}},
            "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(deltas))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if below is not None:
            kwargs["ConditionExpression"] = "#c0 < :max"
            kwargs["ExpressionAttributeValues"][":max"] = to_attr(below)
        return conditional_write(self.dynamodb.update_item, **kwargs)

    def set_counters(self, campaign_id: str, counters: dict[str, int]) -> None:
        """Overwrite the counters (after a recount)."""
        update, names, values = set_clause(counters)
        self.dynamodb.update_item(
            TableName=self.campaigns_table,
            Key={"campaign_id": {"S": campaign_id}},
            UpdateExpression=update,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def touch(
        self, campaign_id: str, vin: str, expected_state: str, expected_version: int, sets: dict[str, Any]
    ) -> bool:
        """Change attributes without a state change (deferral reason, re-check time, notice sent)."""
        update, names, values = set_clause({**sets, "version": expected_version + 1})
        return conditional_write(
            self.dynamodb.update_item,
            TableName=self.table,
            Key={"campaign_id": {"S": campaign_id}, "vin": {"S": vin}},
            UpdateExpression=update,
            ConditionExpression="#state = :expected_state AND #version = :expected_version",
            ExpressionAttributeNames={**names, "#state": "state", "#version": "version"},
            ExpressionAttributeValues={
                **values,
                ":expected_state": {"S": expected_state},
                ":expected_version": to_attr(expected_version),
            },
        )

    def _deployment_update(self, change: Transition) -> dict[str, Any]:
        sets = {
            **change.sets,
            "state": str(change.new_state),
            "campaign_status": bucket(change.campaign_id, change.new_state, change.wave),
            "version": change.old_version + 1,
        }
        if change.next_action_at is not None:
            sets["next_action_at"] = change.next_action_at
        update, names, values = set_clause(sets)
        if change.removes:
            update += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(change.removes)))
            names.update({f"#r{i}": name for i, name in enumerate(change.removes)})
        return {
            "TableName": self.table,
            "Key": {"campaign_id": {"S": change.campaign_id}, "vin": {"S": change.vin}},
            "UpdateExpression": update,
            "ConditionExpression": "#state = :old_state AND #version = :old_version",
            "ExpressionAttributeNames": {**names, "#state": "state", "#version": "version"},
            "ExpressionAttributeValues": {
                **values,
                ":old_state": {"S": str(change.old_state)},
                ":old_version": to_attr(change.old_version),
            },
        }
