"""The vehicles table read in parallel-scan segments, a bounded piece at a time (the snapshot's sweep).

DynamoDB's parallel Scan splits a table into ``TotalSegments`` disjoint segments; each call reads up to
1 MB of one of them and hands back the key to resume from. The update manager's healing sweep
(``services/fleet/sweep.py``) reads a few segments per tick, each for at most ``max_pages`` pages, so
no invocation reads the whole table. Items come back as plain values projected to the snapshot's
columns (``fleet_snapshot.snapshot_projection``).
"""

from __future__ import annotations

from typing import Any

from fleetota_core.adapters.aws_errors import reading
from fleetota_core.adapters.fleet_snapshot import snapshot_projection
from fleetota_core.adapters.vehicle_state import item_values
from fleetota_core.domain.fleet_sweep import SegmentRead


class VehicleTableSegments:
    """Accepts an injected DynamoDB client."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    def read(
        self, segment: int, segments: int, start_key: dict[str, Any] | None, max_pages: int
    ) -> SegmentRead:
        """Up to ``max_pages`` pages of ``segment`` (of ``segments``) from ``start_key`` (None: its start)."""
        kwargs: dict[str, Any] = {
            **snapshot_projection(self.table),
            "Segment": segment,
            "TotalSegments": segments,
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        items: list[dict[str, Any]] = []
        for _ in range(max_pages):
            with reading(f"segment {segment}/{segments} of table {self.table}"):
                page = self.dynamodb.scan(**kwargs)
            items.extend(item_values(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return SegmentRead(items, None, pages=_ + 1)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return SegmentRead(items, kwargs["ExclusiveStartKey"], pages=max_pages)
