"""The alerts feed: the alerts actually sent (auto-pause, abort, completion, alarm changes), newest first.

By default the feed leaves out alarms returning to OK: every alarm settles into OK after a start, and
those rows would bury the alerts that need someone. ``include_ok=True`` brings them back.

Our publishers record every alert they send in the ledger (pk ``alerts``, see
:mod:`fleetota_core.adapters.alerts`); that includes the local alarm evaluator. In AWS, CloudWatch
publishes alarm changes to the alerts topic itself, so the feed adds them from the alarm history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.alerts import ALERTS_PARTITION, alarm_history
from fleetota_core.adapters.table_reader import query_partition

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources

# The alarm states whose change notifies the alerts topic (the template sets AlarmActions and OKActions).
_NOTIFYING_STATES = {"ALARM": "alarm", "OK": "ok"}
# The feed rows an alarm's return to OK makes, in the ledger and from the alarm history alike.
RECOVERY_KIND = "ok"


def _ts(raw: Any) -> datetime:
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
    try:
        when = datetime.fromisoformat(str(raw).split("#", 1)[0].replace("Z", "+00:00"))
    except ValueError:
        return datetime.fromtimestamp(0, UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def ledger_alerts(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Feed rows for the alerts our publishers recorded in the ledger."""
    return [
        {
            "when": _ts(i.get("ts") or i.get("sk")),
            "kind": str(i.get("kind") or "alert"),
            "subject": str(i.get("subject") or i.get("kind") or "alert"),
            "detail": str(i.get("message") or ""),
            "severity": str(i.get("severity") or "info"),
            "source": i.get("campaign_id") or i.get("alarm_name") or "",
        }
        for i in items
    ]


def history_alerts(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Feed rows for alarm state changes CloudWatch notified (to ALARM or OK; others have no action)."""
    return [
        {
            "when": _ts(c["when"]),
            "kind": _NOTIFYING_STATES[c["new"]],
            "subject": f"{c['name']} → {c['new']}",
            "detail": str(c.get("reason") or ""),
            "severity": "critical" if c["new"] == "ALARM" else "info",
            "source": c["name"],
        }
        for c in changes
        if c.get("new") in _NOTIFYING_STATES
    ]


def recent_alerts(
    clients: ClientFactory,
    resources: Resources,
    stack_name: str,
    limit: int = 20,
    include_ok: bool = False,
) -> list[dict[str, Any]]:
    """The newest ``limit`` alerts sent to the alerts topic, newest first.

    Parameters
    ----------
    include_ok
        Also list alarms returning to OK; left out by default, and before ``limit`` counts.
    """

    def wanted(item: dict[str, Any]) -> bool:
        return include_ok or item.get("kind") != RECOVERY_KIND

    recorded = query_partition(
        clients.dynamodb,
        resources.ledger_table,
        "pk",
        ALERTS_PARTITION,
        limit=limit,
        newest_first=True,
        keep=wanted,
    )
    alerts = ledger_alerts(recorded)
    if not clients.settings.is_local:
        # Locally the alarm evaluator records its alerts like any publisher (moto keeps no alarm history).
        states = _NOTIFYING_STATES if include_ok else ["ALARM"]
        alerts += history_alerts(alarm_history(clients.cloudwatch, f"{stack_name}-", limit, states))
    return sorted(alerts, key=lambda a: a["when"], reverse=True)[:limit]
