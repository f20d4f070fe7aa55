"""The local stack keeps its state across stop and start, survives SIGKILL and corrupt snapshots, and
``local reset`` wipes it. Each test runs ``local up`` in its own process, port and state folder."""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from fleetota_core.adapters.clients import client_factory
from fleetota_core.composition import campaign_ports
from fleetota_core.domain.campaign import CampaignSpec, WaveSpec
from fleetota_core.domain.deployment import DeploymentState, deployment_id
from fleetota_core.domain.firmware import load_public_key, verify_release
from fleetota_core.domain.telemetry import OtaReport, OtaStatus
from fleetota_core.local.lifecycle import persistence_status, reset_stack, stop_stack, wait_until_ready
from fleetota_core.local.persistence import format_version
from fleetota_core.local.server import control_request
from fleetota_core.local.snapshot_file import SNAPSHOT_NAME, encode
from fleetota_core.local.stack_spec import REPO_ROOT, read_stack_spec
from fleetota_core.services.campaigns.create import (
    campaign_history,
    create_campaign,
    get_campaign,
    list_deployments,
)
from fleetota_core.services.campaigns.releases import list_releases, publish_release
from fleetota_core.services.campaigns.reports import apply_ota_reports
from fleetota_core.services.campaigns.tick import run_tick
from fleetota_core.services.ingest.stats import telemetry_stats
from fleetota_core.settings import Settings
from simulator.fleet import generate_fleet
from simulator.record import encode as encode_record
from simulator.vehicle_keys import register_fleet
from tests.integration.test_campaign_services import seed_vehicles as seed_campaign_vehicles

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow


def now() -> datetime:
    """The test's own time, taken when it runs: a time taken at import can be minutes old by then
    (xdist collects every file first), and the runtime's own ticks run at the real time."""
    return datetime.now(UTC).replace(microsecond=0)


MODEL = "Tesla Model 3"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalUp:
    """``python -m fleetota_core local up`` in a subprocess with its own port and state folder."""

    def __init__(self, state_dir: Path, interval_s: float = 10.0) -> None:
        self.settings = Settings(
            mode="local",
            local_host="127.0.0.1",
            local_port=_free_port(),
            state_dir=state_dir,
            snapshot_interval_s=interval_s,
        )
        self.log = state_dir / "up.log"
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "FLEETOTA_MODE": "local",
            "FLEETOTA_LOCAL_PORT": str(self.settings.local_port),
            "FLEETOTA_STATE_DIR": str(self.settings.state_dir),
            "FLEETOTA_SNAPSHOT_INTERVAL_S": str(self.settings.snapshot_interval_s),
            "PYTHONUNBUFFERED": "1",
        }

    def start(self) -> None:
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fleetota_core", "local", "up"],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env=self.env(),
            )
        wait_until_ready(self.settings, timeout=90, process=self.process)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fleetota_core", "local", *args],
            cwd=REPO_ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def stop(self) -> str:
        message = stop_stack(self.settings)
        self.reap()
        return message

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.reap()

    def reap(self) -> None:
        if self.process is not None:
            self.process.wait(timeout=60)
            self.process = None

    @property
    def clients(self) -> Any:
        return client_factory(self.settings)

    @property
    def resources(self) -> Any:
        return read_stack_spec(self.settings).resources

    @property
    def ports(self) -> Any:
        return campaign_ports(self.clients, self.resources)


@pytest.fixture
def local_up(tmp_path: Path) -> Iterator[LocalUp]:
    stack = LocalUp(tmp_path / "state")
    yield stack
    if stack.process is not None and stack.process.poll() is None:
        stack.process.send_signal(signal.SIGTERM)
        stack.reap()


def seed_vehicles(stack: LocalUp, count: int) -> list[str]:
    """``count`` parked, charged, online and provisioned vehicles, as the campaign tests seed them."""
    return seed_campaign_vehicles(stack, count, last_ts=now().isoformat())


def put_telemetry(stack: LocalUp, vehicles: int) -> None:
    lines, at = [], now()
    fleet = generate_fleet(vehicles, 3)
    register_fleet(stack.clients, stack.resources, fleet)
    for vehicle in fleet:
        vehicle.seq += 1
        lines.append(encode_record(vehicle, at.timestamp()).encode())
    key = f"raw/dt={at:%Y-%m-%d}/hour={at:%H}/persist.ndjson.gz"
    body = gzip.compress(b"\n".join(lines) + b"\n")
    stack.clients.s3.put_object(Bucket=stack.resources.telemetry_bucket, Key=key, Body=body)


def wait_for(condition: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)
    return value


def vehicles(stack: LocalUp) -> list[dict[str, Any]]:
    items = stack.clients.dynamodb.scan(TableName=stack.resources.vehicles_table)["Items"]
    return sorted(items, key=lambda item: item["vin"]["S"])


def snapshot_of(stack: LocalUp) -> dict[str, Any]:
    """Everything test (a) expects to find again after a restart."""
    ports = stack.ports
    campaign_id = ports.campaigns.list_all()[0].campaign_id
    alias = stack.resources.image_key_alias
    return {
        "campaign": get_campaign(campaign_id, ports),
        "deployments": list_deployments(campaign_id, ports),
        "audit": campaign_history(campaign_id, ports),
        "releases": list_releases(ports),
        "vehicles": vehicles(stack),
        "telemetry": telemetry_stats(stack.clients, stack.resources),
        "key_id": stack.clients.kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"],
        "public_key": ports.image_signer.public_key_der(),
    }


def test_stop_and_start_keep_a_running_campaign_its_keys_and_counters_and_it_carries_on(local_up):
    # Given a campaign in its first wave, telemetry processed, and a signed release
    local_up.start()
    # The campaign's clock, taken now: the runtime's own ticks run at the real time, and with a time
    # taken at import (67 s old in one CI run) one of them opened wave 2 between before and after.
    start = now()
    vins = seed_vehicles(local_up, 10)
    release = publish_release(b"firmware" * 1000, "2.0.0", [MODEL], [], None, "", "alice", local_up.ports)
    spec = CampaignSpec(
        name="persist", release_version="2.0.0", waves=(WaveSpec(percent=50), WaveSpec(percent=50))
    )
    campaign = create_campaign(spec, "alice", local_up.ports, "demo", now=start)
    assert run_tick(local_up.ports, start).notified == 5
    put_telemetry(local_up, 20)
    wait_for(lambda: telemetry_stats(local_up.clients, local_up.resources)["stored"] >= 20)
    before = snapshot_of(local_up)

    # When the stack stops (final snapshot) and starts again
    assert "stopped the local stack" in local_up.stop()
    assert local_up.cli("status").returncode == 1  # not running, but the saved state is reported
    local_up.start()

    # Then everything is as it was, the same key verifies the earlier signature, and the campaign goes on
    after = snapshot_of(local_up)
    assert after == before
    assert len(before["deployments"]) == len(vins) and before["audit"]
    assert verify_release(load_public_key(after["public_key"]), release)
    assert "restored" in (persistence_status(local_up.settings) or {})["restored"]
    # Wave 1 succeeds only now: the runtime's own ticks (every 10 s, at the real time) would
    # otherwise open wave 2 whenever one fell between the two snapshots, as under load in one run.
    # From here either tick may open and notify wave 2; the campaign must carry on either way.
    first_wave = [d for d in list_deployments(campaign.campaign_id, local_up.ports) if d.wave == 0]
    reports = [
        (
            d.vin,
            OtaReport(
                campaign_id=campaign.campaign_id,
                deployment_id=deployment_id(campaign.campaign_id, d.vin),
                status=s,
                target_version="2.0.0",
            ),
        )
        for d in first_wave
        for s in (OtaStatus.DOWNLOADING, OtaStatus.INSTALLING, OtaStatus.SUCCEEDED)
    ]
    apply_ota_reports(reports, local_up.ports, now=start + timedelta(minutes=1))
    run_tick(local_up.ports, start + timedelta(minutes=2))
    assert get_campaign(campaign.campaign_id, local_up.ports).current_wave == 1
    run_tick(local_up.ports, start + timedelta(minutes=3))
    second_wave = [d for d in list_deployments(campaign.campaign_id, local_up.ports) if d.wave == 1]
    assert len(second_wave) == 5
    assert all(d.state is DeploymentState.NOTIFIED for d in second_wave), [d.state for d in second_wave]


def test_after_sigkill_the_stack_starts_with_what_the_last_snapshot_held(tmp_path: Path):
    stack = LocalUp(tmp_path / "state", interval_s=1.0)
    stack.start()
    try:
        seed_vehicles(stack, 3)
        stack.clients.s3.put_object(Bucket=stack.resources.firmware_bucket, Key="kept.bin", Body=b"kept")
        written = time.time()
        wait_for(
            lambda: (
                (
                    (control_request(stack.settings.endpoint_url or "", "persistence") or {}).get(
                        "last_snapshot_at"
                    )
                    or 0
                )
                > written
            )
        )
        stack.kill()
        stack.start()
        assert len(vehicles(stack)) == 3
        body = stack.clients.s3.get_object(Bucket=stack.resources.firmware_bucket, Key="kept.bin")[
            "Body"
        ].read()
        assert body == b"kept"
    finally:
        stack.stop()


def test_a_corrupt_snapshot_starts_an_empty_working_stack_and_says_so(local_up):
    state = local_up.settings.state_dir
    state.mkdir(parents=True)
    # The checksum is right, so this reaches the unpickler, the deepest place a start-up can fail.
    (state / SNAPSHOT_NAME).write_bytes(encode(b"\x80\x05not a pickle", format_version(), time.time()))
    local_up.start()
    status = persistence_status(local_up.settings) or {}
    assert "STARTED EMPTY" in status["warning"]
    assert "WARNING" in local_up.log.read_text()
    assert "WARNING" in local_up.cli("status").stdout
    assert [p.name for p in state.glob(f"{SNAPSHOT_NAME}.unusable-*")]
    seed_vehicles(local_up, 1)
    assert len(vehicles(local_up)) == 1


def test_local_reset_wipes_the_saved_state_running_or_stopped(local_up):
    local_up.start()
    seed_vehicles(local_up, 2)
    result = local_up.cli("reset")
    assert result.returncode == 0 and "saved state" in result.stdout
    local_up.stop()
    local_up.start()
    assert vehicles(local_up) == []
    seed_vehicles(local_up, 2)
    local_up.stop()
    assert (local_up.settings.state_dir / SNAPSHOT_NAME).exists()
    assert "saved state wiped" in reset_stack(local_up.settings)
    assert not (local_up.settings.state_dir / SNAPSHOT_NAME).exists()
    local_up.start()
    assert vehicles(local_up) == []


def test_local_stop_without_a_running_stack_says_so(tmp_path: Path):
    stack = LocalUp(tmp_path / "state")
    result = stack.cli("stop")
    assert result.returncode == 0 and "no local stack is running" in result.stdout
