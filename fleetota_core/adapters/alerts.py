"""Operator alerts: published to the alerts topic, and recorded in the ledger for the dashboard's feed.

SNS keeps no copy of what it delivered, so every publisher goes through :func:`publish_alert`, which
records each alert it sent under ``pk = alerts`` (``sk = <UTC timestamp>#<message id>``, 14-day TTL).
In AWS mode CloudWatch publishes alarm changes itself; :func:`alarm_history` reads those back.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from fleetota_core.adapters.aws_errors import reading
from fleetota_core.adapters.dynamo_items import sortable_ts, to_item

if TYPE_CHECKING:
    from collections.abc import Collection

ALERTS_PARTITION = "alerts"
ALERT_TTL = timedelta(days=14)
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    """One operator alert: ``payload`` is the SNS message body, the rest is what the feed shows."""

    kind: str  # auto-pause, abort, completed, alarm, ok, ...
    subject: str
    message: str  # one readable line
    severity: str  # critical, warning or info
    payload: dict[str, Any] = field(default_factory=dict)
    campaign_id: str | None = None
    alarm_name: str | None = None
    source: str | None = None  # SNS message attribute; CloudWatch-shaped messages carry none


def alert_item(alert: Alert, message_id: str, now: datetime) -> dict[str, Any]:
    """The ledger item that records a sent alert (plain values; ``None`` attributes are left out)."""
    return {
        "pk": ALERTS_PARTITION,
        # The message id keeps two alerts of the same microsecond apart; the timestamp sorts them.
        "sk": f"{sortable_ts(now)}#{message_id}",
        "ts": sortable_ts(now),
        "kind": alert.kind,
        "subject": alert.subject,
        "message": alert.message,
        "severity": alert.severity,
        "campaign_id": alert.campaign_id,
        "alarm_name": alert.alarm_name,
        "message_id": message_id,
        "expires_at": int((now + ALERT_TTL).timestamp()),
    }


def publish_alert(
    sns: Any,
    dynamodb: Any,
    topic_arn: str,
    ledger_table: str | None,
    alert: Alert,
    now: datetime | None = None,
) -> str:
    """Publish ``alert`` to ``topic_arn`` and record it in ``ledger_table``; returns the SNS message id.

    The record is best effort: the alert has reached its subscribers by then, so a failed ledger write
    is logged rather than failing the caller (a tick must not redo the state change it announced).
    """
    now = now or datetime.now(UTC)
    request: dict[str, Any] = {
        "TopicArn": topic_arn,
        "Subject": alert.subject[:100],
        "Message": json.dumps(alert.payload, separators=(",", ":"), default=str),
    }
    if alert.source:
        request["MessageAttributes"] = {"source": {"DataType": "String", "StringValue": alert.source}}
    with reading(f"topic {topic_arn}"):
        message_id = sns.publish(**request)["MessageId"]
    if ledger_table:
        try:
            dynamodb.put_item(TableName=ledger_table, Item=to_item(alert_item(alert, message_id, now)))
        except (BotoCoreError, ClientError) as exc:
            logger.warning("alert %s sent but not recorded in %s: %s", message_id, ledger_table, exc)
    return message_id


def alarm_history(
    cloudwatch: Any, name_prefix: str, limit: int = 20, states: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """The newest state changes of alarms named ``name_prefix*`` (into one of ``states`` if given).

    Each is a dict of name, when, old and new state, and reason.
    """
    changes: list[dict[str, Any]] = []
    with reading("CloudWatch alarm history"):
        pages = cloudwatch.get_paginator("describe_alarm_history").paginate(
            HistoryItemType="StateUpdate", ScanBy="TimestampDescending"
        )
        for page in pages:
            for item in page.get("AlarmHistoryItems", []):
                if not item.get("AlarmName", "").startswith(name_prefix):
                    continue
                data = json.loads(item.get("HistoryData") or "{}")
                new_state = data.get("newState", {})
                if states is not None and new_state.get("stateValue") not in states:
                    continue
                changes.append(
                    {
                        "name": item["AlarmName"],
                        "when": item["Timestamp"],
                        "old": data.get("oldState", {}).get("stateValue", ""),
                        "new": new_state.get("stateValue", ""),
                        "reason": new_state.get("stateReason") or item.get("HistorySummary", ""),
                    }
                )
                if len(changes) >= limit:
                    return changes
    return changes
