"""The campaigns table: one item per campaign holding its spec, state and deployment counters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from fleetota_core.adapters.aws_errors import conditional_write, reading
from fleetota_core.adapters.campaign_items import (
    campaign_changes,
    campaign_from_item,
    campaign_to_item,
    counter_attr,
    counter_attrs,
    cursor_attr,
)
from fleetota_core.adapters.dynamo_items import from_item, set_clause, to_attr, to_item
from fleetota_core.domain.deployment import CELLULAR_RESERVED, IN_FLIGHT_COUNT
from fleetota_core.errors import ConflictError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fleetota_core.domain.campaign import Campaign
    from fleetota_core.domain.deployment import CounterKey


class CampaignStore:
    """Conditional writes keyed on ``version`` (optimistic locking) so concurrent ticks cannot clash."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    def put_new(self, campaign: Campaign) -> None:
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item=to_item(campaign_to_item(campaign)),
                ConditionExpression="attribute_not_exists(campaign_id)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConflictError(f"campaign {campaign.campaign_id} already exists") from exc
            raise

    def get(self, campaign_id: str) -> Campaign | None:
        with reading(f"campaign {campaign_id}"):
            response = self.dynamodb.get_item(
                TableName=self.table, Key={"campaign_id": {"S": campaign_id}}, ConsistentRead=True
            )
        item = from_item(response.get("Item"))
        return None if item is None else campaign_from_item(item)

    def list_all(self) -> list[Campaign]:
        # The campaigns table holds tens to hundreds of items; a scan is the honest read here.
        out: list[Campaign] = []
        with reading(f"table {self.table}"):
            for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.table):
                out.extend(campaign_from_item(from_item(item) or {}) for item in page.get("Items", []))
        return out

    def update(self, campaign_id: str, expected_version: int, changes: Mapping[str, object]) -> bool:
        """SET ``changes`` and bump ``version`` if nobody else changed the campaign; False if they did."""
        update, names, values = set_clause(campaign_changes(changes))
        return conditional_write(
            self.dynamodb.update_item,
            TableName=self.table,
            Key={"campaign_id": {"S": campaign_id}},
            UpdateExpression=f"{update}, #ver = #ver + :one",
            ConditionExpression="#ver = :expected",
            ExpressionAttributeNames={**names, "#ver": "version"},
            ExpressionAttributeValues={
                **values,
                ":one": {"N": "1"},
                ":expected": to_attr(expected_version),
            },
        )

    def advance_cursor(self, campaign_id: str, wave: int, position: int) -> None:
        """Move wave ``wave``'s roster cursor forward to ``position``, never back."""
        # A failed condition means a concurrent tick already went further: nothing to do.
        conditional_write(
            self.dynamodb.update_item,
            TableName=self.table,
            Key={"campaign_id": {"S": campaign_id}},
            UpdateExpression="SET #n = :p",
            ConditionExpression="attribute_exists(campaign_id) AND (attribute_not_exists(#n) OR #n < :p)",
            ExpressionAttributeNames={"#n": cursor_attr(wave)},
            ExpressionAttributeValues={":p": to_attr(position)},
        )

    def add_counters(
        self,
        campaign_id: str,
        deltas: Mapping[CounterKey, int],
        *,
        in_flight_below: int | None = None,
        never_negative: bool = False,
    ) -> bool:
        """One atomic ADD of ``deltas``; False when the in-flight cap or a floor at zero refused it."""
        if not deltas:
            return True
        attrs = counter_attrs(deltas)
        names = {f"#c{i}": name for i, name in enumerate(attrs)}
        values = {f":c{i}": to_attr(delta) for i, delta in enumerate(attrs.values())}
        conditions = []
        if in_flight_below is not None:
            cap = counter_attr(IN_FLIGHT_COUNT)
            placeholder = next((p for p, name in names.items() if name == cap), "#cap")
            names[placeholder] = cap
            values[":max"] = to_attr(in_flight_below)
            conditions.append(f"{placeholder} < :max")
        if never_negative:
            for i, delta in enumerate(attrs.values()):
                if delta < 0:
                    values[f":f{i}"] = to_attr(-delta)
                    conditions.append(f"#c{i} >= :f{i}")
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"campaign_id": {"S": campaign_id}},
            "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(attrs))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if conditions:
            kwargs["ConditionExpression"] = " AND ".join(conditions)
        return conditional_write(self.dynamodb.update_item, **kwargs)

    def reserve_cellular(self, campaign_id: str, size_bytes: int, budget_bytes: int) -> bool:
        """Reserve ``size_bytes`` of the cellular budget if the reservations stay within it; atomic, so
        two ticks at once never overspend. A negative ``size_bytes`` gives a reservation back."""
        attr = counter_attr(CELLULAR_RESERVED)
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"campaign_id": {"S": campaign_id}},
            "UpdateExpression": "ADD #r :size",
            "ExpressionAttributeNames": {"#r": attr},
            "ExpressionAttributeValues": {":size": to_attr(size_bytes)},
        }
        if size_bytes > 0:
            limit = budget_bytes - size_bytes
            if limit < 0:
                return False
            kwargs["ConditionExpression"] = "attribute_not_exists(#r) OR #r <= :limit"
            kwargs["ExpressionAttributeValues"][":limit"] = to_attr(limit)
        return conditional_write(self.dynamodb.update_item, **kwargs)

    def set_counters(self, campaign_id: str, counters: Mapping[CounterKey, int]) -> None:
        """Overwrite the counters (after a recount)."""
        update, names, values = set_clause(counter_attrs(counters))
        with reading(f"campaign {campaign_id}"):
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"campaign_id": {"S": campaign_id}},
                UpdateExpression=update,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
