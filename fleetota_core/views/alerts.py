"""The alerts feed: auto-pause, abort, alarm changes and campaign completion, newest first.

SNS alerts are fire-and-forget, so the feed is rebuilt from the state they announce: campaign items
(state, reason, ``updated_at``), alarm states (``StateUpdatedTimestamp``), and any alert items kept in
the ledger (pk ``alerts``) by publishers that record what they sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.cloudwatch_reader import alarm_states
from fleetota_core.adapters.table_reader import query_partition, scan_table

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources

ALERTS_PARTITION = "alerts"
_CAMPAIGN_ALERTS = {"PAUSED": "pause", "ABORTED": "abort", "COMPLETED": "completed"}


def _ts(raw: Any) -> datetime:
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
    try:
        when = datetime.fromisoformat(str(raw).split("#", 1)[0].replace("Z", "+00:00"))
    except ValueError:
        return datetime.fromtimestamp(0, UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def campaign_alerts(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One alert per campaign that is paused, aborted or completed."""
    alerts = []
    for item in items:
        kind = _CAMPAIGN_ALERTS.get(str(item.get("state")))
        if kind is None:
            continue
        reason = str(item.get("state_reason") or "")
        if kind == "pause" and not reason.startswith("pause by"):
            kind = "auto-pause"
        name = item.get("name") or item.get("campaign_id", "")
        alerts.append(
            {
                "when": _ts(item.get("updated_at") or item.get("created_at")),
                "kind": kind,
                "subject": f"Campaign {name} {item.get('state', '').lower()}",
                "detail": reason,
            }
        )
    return alerts


def alarm_alerts(alarms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alarms in ALARM, and OK states an evaluation produced (not the OK a fresh alarm starts with).

    Alarms never evaluated (INSUFFICIENT_DATA) are not news.
    """
    return [
        {
            "when": _ts(a["updated"]),
            "kind": "alarm" if a["state"] == "ALARM" else "ok",
            "subject": f"{a['name']} → {a['state']}",
            "detail": a.get("reason", ""),
        }
        for a in alarms
        if a.get("updated")
        and (a["state"] == "ALARM" or (a["state"] == "OK" and "Threshold Crossed" in (a.get("reason") or "")))
    ]


def recent_alerts(
    clients: ClientFactory, resources: Resources, stack_name: str, limit: int = 20
) -> list[dict[str, Any]]:
    """The newest ``limit`` alerts from campaigns, alarms and the ledger, newest first."""
    alerts = campaign_alerts(scan_table(clients.dynamodb, resources.campaigns_table))
    alerts += alarm_alerts(alarm_states(clients.cloudwatch, f"{stack_name}-"))
    ledger = query_partition(
        clients.dynamodb, resources.ledger_table, "pk", ALERTS_PARTITION, limit=limit, newest_first=True
    )
    alerts += [
        {
            "when": _ts(i.get("ts") or i.get("sk")),
            "kind": str(i.get("kind", "alert")),
            "subject": str(i.get("subject") or i.get("kind", "alert")),
            "detail": str(i.get("message") or ""),
        }
        for i in ledger
    ]
    return sorted(alerts, key=lambda a: a["when"], reverse=True)[:limit]
