"""The audit table: who did what to which campaign or release, when, and why."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fleetota_core.adapters.aws_errors import reading
from fleetota_core.adapters.dynamo_items import from_item, sortable_ts, to_item

RETENTION = timedelta(days=400)  # a year of history plus a margin for annual reviews


class AuditLog:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    def record(
        self,
        entity_id: str,
        action: str,
        operator: str,
        reason: str = "",
        detail: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> None:
        now = now or datetime.now(UTC)
        # The uuid suffix keeps two actions in the same microsecond from overwriting each other.
        item = {
            "entity_id": entity_id,
            "event_ts": f"{sortable_ts(now)}#{uuid.uuid4().hex[:8]}",
            "action": action,
            "operator": operator,
            "reason": reason,
            "detail": detail or {},
            "expires_at": int((now + RETENTION).timestamp()),
        }
        with reading(f"table {self.table}"):
            self.dynamodb.put_item(TableName=self.table, Item=to_item(item))

    def history(self, entity_id: str, limit: int = 100) -> list[dict[str, Any]]:
        with reading(f"table {self.table}"):
            page = self.dynamodb.query(
                TableName=self.table,
                KeyConditionExpression="entity_id = :e",
                ExpressionAttributeValues={":e": {"S": entity_id}},
                ScanIndexForward=False,
                Limit=limit,
            )
        return [item for item in (from_item(i) for i in page.get("Items", [])) if item]
