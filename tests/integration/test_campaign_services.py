"""Campaign services on the local stack, with vehicles seeded straight into the vehicles table."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests

from fleetota_core.adapters.campaign_items import counter_attr
from fleetota_core.adapters.dynamo_items import to_item
from fleetota_core.domain.campaign import CampaignSpec, CampaignState, WaveSpec
from fleetota_core.domain.deployment import IN_FLIGHT_COUNT, DeploymentState, Lane, state_count
from fleetota_core.domain.firmware import load_public_key, verify_release
from fleetota_core.domain.job_document import JobNotice, OtaHistory, SignedJobDocument, TrustedKeys, check_job
from fleetota_core.domain.telemetry import OtaReport, OtaStatus
from fleetota_core.domain.vin import with_check_digit
from fleetota_core.errors import ConflictError, ValidationError
from fleetota_core.services.campaigns.actions import pause_campaign, resume_campaign, rollback_campaign
from fleetota_core.services.campaigns.create import (
    campaign_history,
    create_campaign,
    get_campaign,
    list_deployments,
)
from fleetota_core.services.campaigns.preview import preview_campaign
from fleetota_core.services.campaigns.releases import list_releases, publish_release
from fleetota_core.services.campaigns.reports import apply_ota_reports
from fleetota_core.services.campaigns.tick import run_tick
from tests.integration.registry_support import register_items

NOW = datetime.now(UTC).replace(microsecond=0)
MODEL = "Tesla Model 3"


def vin(n: int) -> str:
    return with_check_digit(f"5YJ3E1EA0PF{n:06d}")


def seed_vehicles(stack, count: int, **overrides) -> list[str]:
    vins = [vin(i) for i in range(count)]
    items = []
    for v in vins:
        item = {
            "vin": v,
            "make": "Tesla",
            "model": MODEL,
            "model_year": 2023,
            "hw_rev": "HW4",
            "firmware_version": "1.0.0",
            "region": "us-west",
            "timezone": "America/Los_Angeles",
            # Read now, not at import: a long suite reaches this more than the 15-minute offline
            # rule after NOW was taken, and a real-time tick would then find every vehicle offline.
            "last_ts": max(NOW, datetime.now(UTC).replace(microsecond=0)).isoformat(),
            "soc_pct": 80.0,
            "charging": False,
            "drive_state": "parked",
            "network": "LTE",
            "signal_dbm": -80,
            "online": True,
            **overrides,
        }
        stack.clients.dynamodb.put_item(TableName=stack.resources.vehicles_table, Item=to_item(item))
        items.append(item)
    register_items(stack, items)  # provisioned: targeting takes identity from the registry
    return vins


def publish(stack, version="2.0.0", body=b"firmware-bytes" * 100):
    return publish_release(body, version, [MODEL], [], None, "test", "alice", stack.ports)


def job_queue(stack) -> str:
    sqs, sns = stack.clients.sqs, stack.clients.sns
    url = sqs.create_queue(QueueName="test-jobs")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=stack.resources.job_topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return url


def drain_notifications(stack, url: str) -> list[dict]:
    out = []
    while True:
        msgs = stack.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            stack.clients.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_a_published_release_is_signed_and_verifies_with_the_kms_public_key(stack):
    seed_vehicles(stack, 1)
    release = publish(stack)
    der = stack.ports.image_signer.public_key_der()
    assert verify_release(load_public_key(der), release)
    # The image key's signature does not verify with the director key: two keys, two roles.
    assert not verify_release(load_public_key(stack.ports.director_signer.public_key_der()), release)
    assert [r.version for r in list_releases(stack.ports)] == ["2.0.0"]


def test_publishing_rejects_duplicates_bad_versions_empty_files_and_unknown_models(stack):
    seed_vehicles(stack, 1)
    publish(stack)
    with pytest.raises(ConflictError, match="already published"):
        publish(stack)
    with pytest.raises(ValidationError, match="not semver"):
        publish(stack, version="2.1")
    with pytest.raises(ValidationError, match="empty"):
        publish(stack, version="2.1.0", body=b"")
    with pytest.raises(ValidationError, match="unknown model"):
        publish_release(b"x", "2.2.0", ["Model T"], [], None, "", "alice", stack.ports)


def test_a_tick_notifies_eligible_vehicles_once_and_defers_the_rest_with_reasons(stack):
    vins = seed_vehicles(stack, 6)
    seed_vehicles_low = vins[:2]
    for v in seed_vehicles_low:
        stack.clients.dynamodb.update_item(
            TableName=stack.resources.vehicles_table,
            Key={"vin": {"S": v}},
            UpdateExpression="SET soc_pct = :s",
            ExpressionAttributeValues={":s": {"N": "18"}},
        )
    publish(stack)
    url = job_queue(stack)
    spec = CampaignSpec(name="t", release_version="2.0.0", waves=(WaveSpec(percent=100),))
    preview = preview_campaign(spec, stack.ports, NOW)
    assert (preview.matched, preview.eligible_now, preview.deferred_reasons) == (6, 4, {"battery": 2})
    campaign = create_campaign(spec, "alice", stack.ports, "test", now=NOW)
    result = run_tick(stack.ports, NOW)
    assert (result.notified, result.deferred) == (4, 2)
    again = run_tick(stack.ports, NOW + timedelta(seconds=1))
    assert again.notified == 0
    notes = drain_notifications(stack, url)
    assert sorted(n["vin"] for n in notes) == sorted(vins[2:])
    deployments = {d.vin: d for d in list_deployments(campaign.campaign_id, stack.ports)}
    assert deployments[vins[0]].state is DeploymentState.DEFERRED
    assert deployments[vins[0]].reason == "battery 18% < 30%"
    # The vehicle fetches only its own document and verifies it against the pinned key.
    keys = TrustedKeys(
        image=load_public_key(stack.ports.image_signer.public_key_der()),
        director=load_public_key(stack.ports.director_signer.public_key_der()),
    )
    assert notes[0]["document_key"] == f"jobs/{notes[0]['vin']}/{notes[0]['deployment_id']}.json"
    assert "document_url" not in notes[0]  # no bearer URL in a notice every subscriber sees
    body = stack.clients.s3.get_object(Bucket=stack.resources.firmware_bucket, Key=notes[0]["document_key"])
    signed = SignedJobDocument.model_validate_json(body["Body"].read())
    doc = check_job(
        signed,
        keys,
        JobNotice.from_message(notes[0]),
        model=MODEL,
        hw_rev="HW4",
        current_version="1.0.0",
        history=OtaHistory(),
        now=NOW,
    )
    artifact = requests.get(doc.download_url, timeout=5).content
    assert len(artifact) == doc.release.manifest.size_bytes


def test_reports_complete_the_campaign_and_rollback_targets_those_who_took_it(stack):
    vins = seed_vehicles(stack, 4)
    publish(stack, "1.0.0")
    publish(stack)
    spec = CampaignSpec(name="t", release_version="2.0.0")
    campaign = create_campaign(spec, "alice", stack.ports, now=NOW)
    run_tick(stack.ports, NOW)
    reports = []
    for v in vins:
        dep = f"{campaign.campaign_id}.{v}"
        for status in (OtaStatus.DOWNLOADING, OtaStatus.INSTALLING, OtaStatus.SUCCEEDED):
            reports.append(
                (
                    v,
                    OtaReport(
                        campaign_id=campaign.campaign_id,
                        deployment_id=dep,
                        status=status,
                        target_version="2.0.0",
                    ),
                )
            )
    reports.append(
        (
            vins[0],
            OtaReport(
                campaign_id=campaign.campaign_id,
                deployment_id="x",
                status=OtaStatus.DOWNLOADING,
                target_version="2.0.0",
            ),
        )
    )
    counts = apply_ota_reports(reports, stack.ports, now=NOW)
    assert (counts.applied, counts.illegal) == (12, 1)
    run_tick(stack.ports, NOW + timedelta(seconds=60))
    done = get_campaign(campaign.campaign_id, stack.ports)
    assert done.state is CampaignState.COMPLETED
    assert done.counters.succeeded == 4
    for v in vins:
        stack.clients.dynamodb.update_item(
            TableName=stack.resources.vehicles_table,
            Key={"vin": {"S": v}},
            UpdateExpression="SET firmware_version = :s",
            ExpressionAttributeValues={":s": {"S": "2.0.0"}},
        )
    rollback = rollback_campaign(campaign.campaign_id, "bob", "regression", stack.ports)
    assert rollback.release.version == "1.0.0" and rollback.spec.allow_downgrade
    assert rollback.total == 4


def test_two_concurrent_ticks_never_notify_a_vehicle_twice(stack):
    seed_vehicles(stack, 40)
    publish(stack)
    url = job_queue(stack)
    spec = CampaignSpec(name="t", release_version="2.0.0", max_in_flight=100)
    create_campaign(spec, "alice", stack.ports, now=NOW)
    results = []
    barrier = threading.Barrier(2)

    def tick():
        barrier.wait()
        results.append(run_tick(stack.ports, NOW))

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    notes = drain_notifications(stack, url)
    assert len(notes) == 40
    assert len({n["vin"] for n in notes}) == 40
    assert sum(r.notified for r in results) == 40


def test_pause_stops_new_notifications_and_is_audited(stack):
    seed_vehicles(stack, 5)
    publish(stack)
    spec = CampaignSpec(name="t", release_version="2.0.0")
    campaign = create_campaign(spec, "alice", stack.ports, now=NOW)
    run_tick(stack.ports, NOW - timedelta(days=1))  # starts it, nothing due yet
    paused = pause_campaign(campaign.campaign_id, "bob", "investigating", stack.ports)
    assert paused.state is CampaignState.PAUSED
    assert run_tick(stack.ports, NOW).notified == 0
    resume_campaign(campaign.campaign_id, "bob", "fine", stack.ports)
    assert run_tick(stack.ports, NOW).notified == 5
    history = campaign_history(campaign.campaign_id, stack.ports)
    assert {("PAUSE", "bob", "investigating"), ("RESUME", "bob", "fine")} <= {
        (h["action"], h["operator"], h["reason"]) for h in history
    }


def test_the_scheduled_lambda_runs_the_tick_and_publishes_ota_metrics(stack):
    seed_vehicles(stack, 3)
    publish(stack)
    spec = CampaignSpec(name="t", release_version="2.0.0", start_at=NOW - timedelta(minutes=1))
    campaign = create_campaign(spec, "alice", stack.ports, now=NOW - timedelta(minutes=1))
    invocations = stack.runtime.fire_schedule()
    assert all(not inv.error for inv in invocations), invocations
    assert get_campaign(campaign.campaign_id, stack.ports).in_flight == 3
    metrics = stack.clients.cloudwatch.list_metrics(Namespace="OTAUpdates", MetricName="InProgress")[
        "Metrics"
    ]
    dimensions = {tuple(d["Value"] for d in m["Dimensions"]) for m in metrics}
    assert {(campaign.campaign_id,), ()} <= dimensions


def test_recount_repairs_counters_that_drifted(stack):
    seed_vehicles(stack, 4)
    publish(stack)
    campaign = create_campaign(CampaignSpec(name="t", release_version="2.0.0"), "a", stack.ports, now=NOW)
    run_tick(stack.ports, NOW)
    # A writer died between its deployment write and its counter update.
    stack.clients.dynamodb.update_item(
        TableName=stack.resources.campaigns_table,
        Key={"campaign_id": {"S": campaign.campaign_id}},
        UpdateExpression="ADD #in_flight :d, #succeeded :one",
        ExpressionAttributeNames={
            "#in_flight": counter_attr(IN_FLIGHT_COUNT),
            "#succeeded": counter_attr(state_count(DeploymentState.SUCCEEDED)),
        },
        ExpressionAttributeValues={":d": {"N": "-3"}, ":one": {"N": "1"}},
    )
    from fleetota_core.services.campaigns.actions import recount_campaign

    fixed = recount_campaign(campaign.campaign_id, "ops", "drift", stack.ports)
    assert (fixed.in_flight, fixed.counters.succeeded, fixed.counters.count("NOTIFIED")) == (4, 0, 4)


def three_vehicle_campaign(stack, **spec):
    """Three parked, charged vehicles, release 2.0.0 and a campaign for them; the job queue's URL."""
    seed_vehicles(stack, 3)
    publish(stack)
    url = job_queue(stack)
    campaign = create_campaign(
        CampaignSpec(name="t", release_version="2.0.0", **spec), "a", stack.ports, now=NOW
    )
    return url, campaign


def test_a_tick_that_dies_after_claiming_leaves_work_the_next_tick_completes(stack, monkeypatch):
    url, campaign = three_vehicle_campaign(stack)
    from fleetota_core.services.campaigns import tick as update_tick

    def crash(*args, **kwargs):
        raise RuntimeError("Lambda timed out")

    monkeypatch.setattr(update_tick, "prepare_job", crash)
    with pytest.raises(RuntimeError):
        run_tick(stack.ports, NOW)
    monkeypatch.undo()
    assert drain_notifications(stack, url) == []
    claimed = get_campaign(campaign.campaign_id, stack.ports)
    assert claimed.in_flight >= 1
    # Before the lease runs out nothing is re-sent; after it, the next tick sends what was claimed.
    run_tick(stack.ports, NOW + timedelta(seconds=30))
    later = run_tick(stack.ports, NOW + update_tick.NOTICE_LEASE + timedelta(seconds=1))
    notes = drain_notifications(stack, url)
    assert later.resent >= 1
    assert sorted(n["vin"] for n in notes) == sorted({n["vin"] for n in notes})
    assert len(notes) == 3


def active_hints(stack, campaign_id: str) -> list[tuple[datetime, str]]:
    return stack.ports.schedule.due(campaign_id, Lane.ACTIVE, datetime(9999, 1, 1, tzinfo=UTC), 1000)


def test_a_sent_notice_is_not_resent_when_its_lease_runs_out_and_times_out_at_its_deadline(stack):
    url, campaign = three_vehicle_campaign(stack, in_progress_timeout_s=600)
    vins = [vin(i) for i in range(3)]
    first = run_tick(stack.ports, NOW)
    assert first.notified == 3
    assert sorted(n["vin"] for n in drain_notifications(stack, url)) == sorted(vins)
    # Each notice left one hint, at its deadline: the record that it went out. No lease remains.
    deadline = NOW + timedelta(seconds=600)
    assert sorted(active_hints(stack, campaign.campaign_id)) == sorted((deadline, v) for v in vins)
    from fleetota_core.services.campaigns import tick as update_tick

    after_lease = run_tick(stack.ports, NOW + update_tick.NOTICE_LEASE + timedelta(seconds=1))
    assert (after_lease.resent, after_lease.notified, after_lease.timed_out) == (0, 0, 0)
    assert drain_notifications(stack, url) == []
    late = run_tick(stack.ports, deadline + timedelta(seconds=1))
    assert late.timed_out == 3


def test_a_tick_that_dies_before_recording_its_notices_has_them_resent_once(stack, monkeypatch):
    url, campaign = three_vehicle_campaign(stack)
    from fleetota_core.services.campaigns import tick as update_tick

    class DiesBeforeRecording(update_tick.Rehints):
        def flush(self, *args, **kwargs):
            raise RuntimeError("Lambda timed out")

    monkeypatch.setattr(update_tick, "Rehints", DiesBeforeRecording)
    with pytest.raises(RuntimeError):
        run_tick(stack.ports, NOW)
    monkeypatch.undo()
    sent = drain_notifications(stack, url)
    assert len(sent) == 3
    lease = update_tick.NOTICE_LEASE + timedelta(seconds=1)
    early = run_tick(stack.ports, NOW + timedelta(seconds=30))
    assert early.resent == 0
    resend = run_tick(stack.ports, NOW + lease)
    again = drain_notifications(stack, url)
    # The same jobs (deployment and attempt) again, each once; then they count as sent.
    assert resend.resent == 3
    key = lambda n: (n["vin"], n["deployment_id"], n["attempt"])  # noqa: E731
    assert sorted(map(key, again)) == sorted(map(key, sent))
    later = run_tick(stack.ports, NOW + 2 * lease)
    assert later.resent == 0
    assert drain_notifications(stack, url) == []
    assert len(active_hints(stack, campaign.campaign_id)) == 3


def test_a_deployment_notified_before_sent_hints_existed_still_times_out_at_its_deadline(stack):
    url, campaign = three_vehicle_campaign(stack, in_progress_timeout_s=600)
    run_tick(stack.ports, NOW)
    drain_notifications(stack, url)
    # As the older tick left it: marked sent on the item (deadline as next_action_at) and only its
    # lease hint filed, no sent hint.
    from fleetota_core.services.campaigns import tick as update_tick

    ports = stack.ports
    deadline, lease = NOW + timedelta(seconds=600), NOW + update_tick.NOTICE_LEASE
    legacy = vin(0)
    deployment = ports.deployments.get(campaign.campaign_id, legacy)
    assert deployment is not None
    sets = {"notice_sent": True, "next_action_at": deadline}
    assert ports.deployments.touch(
        campaign.campaign_id, legacy, DeploymentState.NOTIFIED, deployment.version, sets
    )
    ports.schedule.drop_many(campaign.campaign_id, Lane.ACTIVE, [(deadline, legacy)])
    ports.schedule.hint(campaign.campaign_id, Lane.ACTIVE, lease, legacy)

    after_lease = run_tick(stack.ports, lease + timedelta(seconds=1))
    assert after_lease.resent == 0
    assert drain_notifications(stack, url) == []
    assert (deadline, legacy) in active_hints(stack, campaign.campaign_id)
    late = run_tick(stack.ports, deadline + timedelta(seconds=1))
    assert late.timed_out == 3
