"""Soak baselines in the ledger table: each sampled vehicle's health counters when a wave's soak began.

``pk = soak#<campaign>#<wave>``, ``sk = <chunk>``; each item holds ``ROWS_PER_ITEM`` vehicles as one
string of ``group,vin,observed_s,dtc,reboots,link_drops,parked_s,parked_drain`` rows joined by ``;``
(about 60 bytes a vehicle, far below DynamoDB's 400 KB item limit). Written once when the soak
starts, read once when it ends, expired a month later.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.aws_errors import reading
from fleetota_core.adapters.deployment_schedule import batch_write
from fleetota_core.domain.vehicle_health import HealthReading, SoakBaseline

if TYPE_CHECKING:
    from collections.abc import Callable

ROWS_PER_ITEM = 1000
KEEP = timedelta(days=30)


def _pk(campaign_id: str, wave: int) -> str:
    return f"soak#{campaign_id}#{wave:03d}"


def _row(group: str, vin: str, health: HealthReading) -> str:
    return ",".join((group, vin, *(repr(float(v)) for v in health.values())))


class SoakBaselineStore:
    """Accepts an injected DynamoDB client; ``table`` is the ledger table."""

    def __init__(self, dynamodb: Any, table: str, clock: Callable[[], datetime] | None = None) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.clock = clock or (lambda: datetime.now(UTC))

    def put(self, campaign_id: str, wave: int, baseline: SoakBaseline) -> None:
        rows = [_row("canary", v, h) for v, h in baseline.canary.items()]
        rows += [_row("control", v, h) for v, h in baseline.control.items()]
        expires = {"N": str(int((self.clock() + KEEP).timestamp()))}
        items = [
            {
                "pk": {"S": _pk(campaign_id, wave)},
                "sk": {"S": f"{start // ROWS_PER_ITEM:06d}"},
                "rows": {"S": ";".join(rows[start : start + ROWS_PER_ITEM])},
                "expires_at": expires,
            }
            for start in range(0, max(len(rows), 1), ROWS_PER_ITEM)
        ]
        batch_write(self.dynamodb, self.table, [{"PutRequest": {"Item": item}} for item in items])

    def get(self, campaign_id: str, wave: int) -> SoakBaseline | None:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": _pk(campaign_id, wave)}},
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        with reading(f"table {self.table}"):
            while True:
                page = self.dynamodb.query(**kwargs)
                items.extend(page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        if not items:
            return None
        groups: dict[str, dict[str, HealthReading]] = {"canary": {}, "control": {}}
        for item in items:
            for row in filter(None, item["rows"]["S"].split(";")):
                group, vin, *values = row.split(",")
                groups[group][vin] = HealthReading.from_values(float(v) for v in values)
        return SoakBaseline(groups["canary"], groups["control"])
