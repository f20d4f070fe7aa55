"""``fleetota compliance`` on the local stack: a VIN's history and a release's report, as CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from fleetota_core.cli import main
from fleetota_core.domain.campaign import CampaignSpec, WaveSpec
from fleetota_core.domain.telemetry import OtaReport, OtaStatus
from fleetota_core.services.campaigns.actions import approve_campaign
from fleetota_core.services.campaigns.create import create_campaign
from fleetota_core.services.campaigns.reports import apply_ota_reports
from fleetota_core.services.campaigns.tick import run_tick
from tests.integration.test_campaign_services import NOW, publish, seed_vehicles


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # only the command's output: the in-process ticks print their EMF metric lines
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def report(stack, campaign_id: str, vin: str, status: OtaStatus, at, error_code=None) -> None:
    ota = OtaReport(
        campaign_id=campaign_id,
        deployment_id=f"{campaign_id}.{vin}",
        status=status,
        target_version="2.0.0",
        error_code=error_code,
    )
    apply_ota_reports([(vin, ota)], stack.ports, now=at)


def test_compliance_vin_and_release_reports_as_csv_json_and_table(stack, capsys):
    vins = seed_vehicles(stack, 4)
    publish(stack)
    spec = CampaignSpec(
        name="brakes", release_version="2.0.0", waves=(WaveSpec(size=3), WaveSpec(size=1)), critical=True
    )
    campaign = create_campaign(spec, "alice", stack.ports, now=NOW)
    approve_campaign(campaign.campaign_id, "bob", "four eyes", stack.ports)
    run_tick(stack.ports, NOW)
    notified = sorted(
        d.vin
        for d in stack.ports.deployments.for_campaign(campaign.campaign_id)
        if d.state.value == "NOTIFIED"
    )
    installed_at = NOW + timedelta(minutes=20)
    report(stack, campaign.campaign_id, notified[0], OtaStatus.SUCCEEDED, installed_at)
    report(stack, campaign.campaign_id, notified[1], OtaStatus.FAILED, installed_at, "VERIFY_FAILED")
    stack.clients.dynamodb.update_item(
        TableName=stack.resources.vehicles_table,
        Key={"vin": {"S": notified[0]}},
        UpdateExpression="SET firmware_version = :v",
        ExpressionAttributeValues={":v": {"S": "2.0.0"}},
    )

    code, out, _ = run(capsys, "compliance", "vin", notified[0], "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    ran = [
        (r["version"], r["since"], r["until"], r["campaign_id"], r["approved_by"])
        for r in rows
        if r["kind"] == "ran"
    ]
    assert ran == [
        ("1.0.0", "", installed_at.isoformat(), "", ""),
        ("2.0.0", installed_at.isoformat(), "", campaign.campaign_id, "bob"),
    ]
    assert rows[1]["release_sha256"] == campaign.release.manifest.sha256

    code, out, _ = run(
        capsys,
        "compliance",
        "vin",
        notified[0],
        "--at",
        (NOW + timedelta(hours=1)).isoformat(),
        "--format",
        "json",
    )
    assert code == 0 and json.loads(out)["at"]["running"]["version"] == "2.0.0"
    code, out, _ = run(capsys, "compliance", "vin", notified[1])
    assert code == 0 and "VERIFY_FAILED" in out and "attempt" in out

    code, out, _ = run(capsys, "compliance", "release", "2.0.0", "--format", "json")
    statuses = {v["vin"]: v["status"] for v in json.loads(out)["vehicles"]}
    assert statuses == {
        notified[0]: "running",
        notified[1]: "failed",
        notified[2]: "pending",
        **{v: "pending" for v in vins if v not in notified},
    }
    code, out, _ = run(capsys, "compliance", "release", "2.0.0")
    assert code == 0 and out.rstrip().endswith("1 running, 2 pending, 1 failed")

    code, _, err = run(capsys, "compliance", "vin", "NOT-A-VIN")
    assert code == 2 and err.startswith("error: not a VIN:") and err.count("\n") == 1
    code, _, err = run(capsys, "compliance", "release", "9.9.9")
    assert code == 1 and err == "error: firmware 9.9.9 is not published\n"
    code, _, err = run(capsys, "compliance", "vin", vins[0], "--at", "yesterday")
    assert code == 2 and "'yesterday' is not an ISO 8601 time" in err
