"""The alerts feed: recent SNS alerts (auto-pause, abort, alarm changes, completion) kept in the ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.table_reader import query_partition

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources

ALERTS_PARTITION = "alerts"


def _when(item: dict[str, Any]) -> datetime:
    raw = item.get("ts") or item.get("sk", "")
    try:
        when = datetime.fromisoformat(str(raw).split("#", 1)[0])
    except ValueError:
        return datetime.fromtimestamp(0, UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def alert_row(item: dict[str, Any]) -> dict[str, Any]:
    """One ledger alert item as ``{"when", "kind", "subject", "detail"}``."""
    return {
        "when": _when(item),
        "kind": str(item.get("kind", "alert")),
        "subject": str(item.get("subject") or item.get("message") or item.get("kind", "alert")),
        "detail": item.get("detail") or item.get("message") or "",
    }


def recent_alerts(clients: ClientFactory, resources: Resources, limit: int = 20) -> list[dict[str, Any]]:
    """The newest ``limit`` alerts, newest first."""
    items = query_partition(
        clients.dynamodb, resources.ledger_table, "pk", ALERTS_PARTITION, limit=limit, newest_first=True
    )
    return sorted((alert_row(i) for i in items), key=lambda a: a["when"], reverse=True)
