"""The dashboard's alerts feed shows the alerts that were actually sent to the alerts topic."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fleetota_core.domain.campaign import AbortCriteria, CampaignSpec, CampaignState, WaveSpec
from fleetota_core.domain.deployment import deployment_id
from fleetota_core.domain.telemetry import OtaReport, OtaStatus
from fleetota_core.services.campaigns.actions import abort_campaign
from fleetota_core.services.campaigns.create import create_campaign, get_campaign
from fleetota_core.services.campaigns.reports import apply_ota_reports
from fleetota_core.services.campaigns.tick import run_tick
from fleetota_core.views.alerts import recent_alerts
from tests.integration.test_campaign_services import publish, seed_vehicles
from tests.integration.test_local_stack_observability import breach_alarm

NOW = datetime.now(UTC).replace(microsecond=0)


def _alerts_inbox(stack) -> str:
    sqs = stack.clients.sqs
    url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack.clients.sns.subscribe(TopicArn=stack.resources.alerts_topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def _sent(stack, url: str) -> list[dict]:
    messages = stack.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def _feed(stack, include_ok: bool = False) -> list[dict]:
    return recent_alerts(stack.clients, stack.resources, stack.settings.stack_name, include_ok=include_ok)


def _fail(stack, campaign_id: str, vins: list[str]) -> None:
    reports = [
        (
            v,
            OtaReport(
                campaign_id=campaign_id,
                deployment_id=deployment_id(campaign_id, v),
                status=status,
                target_version="2.0.0",
                error_code="SIGNATURE_INVALID" if status is OtaStatus.FAILED else None,
            ),
        )
        for v in vins
        for status in (OtaStatus.DOWNLOADING, OtaStatus.FAILED)
    ]
    apply_ota_reports(reports, stack.ports, now=NOW)


def test_an_auto_pause_and_an_operator_abort_reach_the_topic_and_the_feed(stack):
    # Given a running one-wave campaign in which 3 of 10 vehicles fail for good (threshold 10 %)
    vins = seed_vehicles(stack, 10)
    publish(stack)
    inbox = _alerts_inbox(stack)
    spec = CampaignSpec(
        name="feed",
        release_version="2.0.0",
        waves=(WaveSpec(percent=100, error_threshold_pct=10),),
        abort=AbortCriteria(failure_pct=90, min_executed=50),
        max_in_flight=100,
    )
    campaign = create_campaign(spec, "alice", stack.ports, now=NOW)
    assert run_tick(stack.ports, NOW).notified == 10
    assert _feed(stack) == []
    _fail(stack, campaign.campaign_id, vins[:3])
    # When the next tick pauses it and an operator then aborts it
    run_tick(stack.ports, NOW + timedelta(seconds=30))
    assert get_campaign(campaign.campaign_id, stack.ports).state is CampaignState.PAUSED
    abort_campaign(campaign.campaign_id, "bob", "bad build", stack.ports)
    # Then both alerts went to the topic, and the feed shows both, newest first
    events = [json.loads(m["Message"])["event"] for m in _sent(stack, inbox)]
    assert sorted(events) == ["ABORTED", "AUTO_PAUSED"]
    feed = _feed(stack)
    assert [(a["kind"], a["source"]) for a in feed] == [
        ("abort", campaign.campaign_id),
        ("auto-pause", campaign.campaign_id),
    ]
    assert feed[0]["detail"] == "abort by bob: bad build"
    assert "3" in feed[1]["detail"] and feed[1]["severity"] == "warning"
    # And each record expires from the ledger after two weeks
    item = stack.clients.dynamodb.query(
        TableName=stack.resources.ledger_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "alerts"}},
    )["Items"][0]
    expires = datetime.fromtimestamp(int(item["expires_at"]["N"]), UTC)
    assert timedelta(days=13) < expires - datetime.now(UTC) <= timedelta(days=14)


def test_an_alarm_change_from_the_local_evaluator_shows_in_the_feed(stack):
    (alarm,) = [a for a in stack.spec.alarms if a["AlarmName"] == f"{stack.spec.stack}-telemetry-latency"]
    breach_alarm(stack, alarm)
    transitions = {t.alarm_name: t.new_state for t in stack.runtime.evaluate_alarms()}
    assert transitions[alarm["AlarmName"]] == "ALARM"
    feed = {a["source"]: a for a in _feed(stack)}
    latency = feed[alarm["AlarmName"]]
    assert latency["kind"] == "alarm" and latency["severity"] == "critical"
    assert latency["detail"].startswith("Threshold Crossed")
    # Alarms of that evaluation that went to OK (missing data treated as OK) show only on request
    assert set(feed) == {name for name, new in transitions.items() if new != "OK"}
    assert {a["source"] for a in _feed(stack, include_ok=True)} == set(transitions)
    # And a second evaluation without a change adds nothing
    stack.runtime.evaluate_alarms()
    assert len(_feed(stack, include_ok=True)) == len(transitions)
