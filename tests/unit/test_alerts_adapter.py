"""publish_alert records what it sent; in AWS mode the feed adds the alarm changes CloudWatch sent."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from types import SimpleNamespace

from botocore.exceptions import ClientError

from fleetota_core.adapters.alerts import Alert, alarm_history, publish_alert
from fleetota_core.adapters.resources import Resources
from fleetota_core.views.alerts import recent_alerts

SENT_AT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
PAUSE = Alert(
    kind="auto-pause",
    subject="FleetOTA campaign c1 AUTO_PAUSED",
    message="wave 1: 3 of 10 failed",
    severity="warning",
    payload={"campaign_id": "c1", "event": "AUTO_PAUSED"},
    campaign_id="c1",
    source="update-manager",
)


class FakeSns:
    def __init__(self) -> None:
        self.published: list[dict] = []

    def publish(self, **request):
        self.published.append(request)
        return {"MessageId": f"m{len(self.published)}"}


class FakeDynamoDB:
    def __init__(self, fail: bool = False) -> None:
        self.items: list[dict] = []
        self.fail = fail

    def put_item(self, TableName, Item):
        if self.fail:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutItem")
        self.items.append(Item)

    def get_paginator(self, name):
        assert name == "query"
        return SimpleNamespace(paginate=lambda **kw: [{"Items": list(reversed(self.items))}])


class FakeCloudWatch:
    def __init__(self, history: list[dict]) -> None:
        self.history = history

    def get_paginator(self, name):
        assert name == "describe_alarm_history"
        return SimpleNamespace(paginate=lambda **kw: [{"AlarmHistoryItems": self.history}])


def _state_update(name: str, old: str, new: str, at: datetime) -> dict:
    data = {"oldState": {"stateValue": old}, "newState": {"stateValue": new, "stateReason": f"to {new}"}}
    return {
        "AlarmName": name,
        "Timestamp": at,
        "HistoryItemType": "StateUpdate",
        "HistoryData": json.dumps(data),
    }


def test_a_published_alert_goes_to_the_topic_and_is_recorded_with_a_two_week_ttl():
    sns, dynamodb = FakeSns(), FakeDynamoDB()
    message_id = publish_alert(sns, dynamodb, "arn:topic", "ledger", PAUSE, now=SENT_AT)
    [request] = sns.published
    assert json.loads(request["Message"])["event"] == "AUTO_PAUSED"
    assert request["MessageAttributes"]["source"]["StringValue"] == "update-manager"
    [item] = dynamodb.items
    assert item["pk"] == {"S": "alerts"}
    assert item["sk"] == {"S": f"2026-11-26T10:00:00.000000Z#{message_id}"}
    assert item["kind"] == {"S": "auto-pause"} and item["campaign_id"] == {"S": "c1"}
    assert "alarm_name" not in item
    assert int(item["expires_at"]["N"]) == int(SENT_AT.timestamp()) + 14 * 86400


def test_an_alert_that_reached_the_topic_is_not_failed_by_its_ledger_record(caplog):
    sns = FakeSns()
    with caplog.at_level(logging.WARNING):
        assert publish_alert(sns, FakeDynamoDB(fail=True), "arn:topic", "ledger", PAUSE) == "m1"
    assert len(sns.published) == 1
    assert "sent but not recorded" in caplog.text


def test_in_aws_mode_the_feed_merges_recorded_alerts_with_the_stack_s_alarm_history():
    dynamodb = FakeDynamoDB()
    publish_alert(FakeSns(), dynamodb, "arn:topic", "ledger", PAUSE, now=SENT_AT)
    later = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    cloudwatch = FakeCloudWatch(
        [
            _state_update("fleetota-telemetry-latency", "OK", "ALARM", later),
            _state_update("fleetota-connectivity", "OK", "INSUFFICIENT_DATA", later),
            _state_update("other-stack-errors", "OK", "ALARM", later),
        ]
    )
    clients = SimpleNamespace(
        settings=SimpleNamespace(is_local=False), dynamodb=dynamodb, cloudwatch=cloudwatch
    )
    resources = Resources.for_local("fleetota", "us-east-1", "http://127.0.0.1:4566")
    feed = recent_alerts(clients, resources, "fleetota")
    assert [(a["kind"], a["source"]) for a in feed] == [
        ("alarm", "fleetota-telemetry-latency"),
        ("auto-pause", "c1"),
    ]
    assert len(alarm_history(cloudwatch, "fleetota-", limit=1)) == 1


def _alarm_alert(new: str) -> Alert:
    kind, severity = {"ALARM": ("alarm", "critical"), "OK": ("ok", "info")}[new]
    subject = f'{new}: "fleetota-errors"'
    return Alert(kind=kind, subject=subject, message="", severity=severity, alarm_name="fleetota-errors")


def test_the_feed_leaves_out_alarms_back_to_ok_unless_asked_and_still_fills_its_limit():
    # Given, oldest first: an auto-pause, an alarm, then every alarm settling into OK after a start
    dynamodb = FakeDynamoDB()
    alerts = [PAUSE, _alarm_alert("ALARM"), *[_alarm_alert("OK") for _ in range(5)]]
    for minute, alert in enumerate(alerts):
        publish_alert(FakeSns(), dynamodb, "arn:topic", "ledger", alert, now=SENT_AT.replace(minute=minute))
    clients = SimpleNamespace(settings=SimpleNamespace(is_local=True), dynamodb=dynamodb)
    resources = Resources.for_local("fleetota", "us-east-1", "http://127.0.0.1:4566")

    # When the feed asks for the newest two, by default and with the OK transitions
    default = recent_alerts(clients, resources, "fleetota", limit=2)
    everything = recent_alerts(clients, resources, "fleetota", limit=2, include_ok=True)

    # Then the default shows what needs someone, though five OK rows are newer
    assert [a["kind"] for a in default] == ["alarm", "auto-pause"]
    assert [a["kind"] for a in everything] == ["ok", "ok"]


def test_in_aws_mode_alarm_history_back_to_ok_shows_only_on_request():
    later = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    cloudwatch = FakeCloudWatch(
        [
            _state_update("fleetota-errors", "ALARM", "OK", later.replace(minute=2)),
            _state_update("fleetota-errors", "OK", "ALARM", later.replace(minute=1)),
        ]
    )
    clients = SimpleNamespace(
        settings=SimpleNamespace(is_local=False), dynamodb=FakeDynamoDB(), cloudwatch=cloudwatch
    )
    resources = Resources.for_local("fleetota", "us-east-1", "http://127.0.0.1:4566")
    assert [a["kind"] for a in recent_alerts(clients, resources, "fleetota", limit=1)] == ["alarm"]
    feed = recent_alerts(clients, resources, "fleetota", limit=1, include_ok=True)
    assert [a["kind"] for a in feed] == ["ok"]
