"""The campaigns table: one item per campaign holding its spec, state and deployment counters."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from fleetota_core.adapters.aws_errors import conditional_write, reading
from fleetota_core.adapters.dynamo_items import from_item, set_clause, to_attr, to_item
from fleetota_core.errors import ConflictError


class CampaignStore:
    """Conditional writes keyed on ``version`` (optimistic locking) so concurrent ticks cannot clash."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    def put_new(self, item: dict[str, Any]) -> None:
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(campaign_id)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConflictError(f"campaign {item['campaign_id']} already exists") from exc
            raise

    def get(self, campaign_id: str) -> dict[str, Any] | None:
        with reading(f"campaign {campaign_id}"):
            response = self.dynamodb.get_item(
                TableName=self.table, Key={"campaign_id": {"S": campaign_id}}, ConsistentRead=True
            )
        return from_item(response.get("Item"))

    def list_all(self) -> list[dict[str, Any]]:
        # The campaigns table holds tens to hundreds of items; a scan is the honest read here.
        out: list[dict[str, Any]] = []
        with reading(f"table {self.table}"):
            for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.table):
                out.extend(from_item(item) for item in page.get("Items", []))
        return out

    def update(self, campaign_id: str, expected_version: int, fields: dict[str, Any]) -> bool:
        """SET ``fields`` and bump ``version`` if nobody else changed the campaign; False if they did."""
        update, names, values = set_clause(fields)
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
        """Move wave ``wave``'s roster cursor (``w<i>_next``) forward to ``position``, never back."""
        # A failed condition means a concurrent tick already went further: nothing to do.
        conditional_write(
            self.dynamodb.update_item,
            TableName=self.table,
            Key={"campaign_id": {"S": campaign_id}},
            UpdateExpression="SET #n = :p",
            ConditionExpression="attribute_exists(campaign_id) AND (attribute_not_exists(#n) OR #n < :p)",
            ExpressionAttributeNames={"#n": f"w{wave}_next"},
            ExpressionAttributeValues={":p": to_attr(position)},
        )


def roster_cursors(item: dict[str, Any]) -> dict[int, int]:
    """Each wave's roster cursor from a campaign item: positions before it need no more looking at."""
    return {i: int(item.get(f"w{i}_next", 0)) for i in range(len(item.get("wave_sizes", [])))}


class VehicleLookup:
    """Reads the vehicles table (written by the telemetry pipeline) for targeting and eligibility."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    def get_many(self, vins: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(vins), 100):
            request = {self.table: {"Keys": [{"vin": {"S": vin}} for vin in vins[start : start + 100]]}}
            while request:
                with reading(f"table {self.table}"):
                    response = self.dynamodb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    plain = from_item(item)
                    if plain:
                        out[plain["vin"]] = plain
                request = response.get("UnprocessedKeys") or {}
        return out

    def scan_all(self) -> list[dict[str, Any]]:
        # Fallback targeting read: the whole fleet, once per campaign creation or preview.
        out: list[dict[str, Any]] = []
        with reading(f"table {self.table}"):
            for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.table):
                out.extend(item for item in (from_item(i) for i in page.get("Items", [])) if item)
        return out
