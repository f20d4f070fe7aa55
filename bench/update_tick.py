"""One update-manager tick on a campaign of 100,000 deployments in steady state, on the local stack.

    .venv/bin/python bench/update_tick.py [--deployments 100000] [--ticks 5] [--json]

Starts moto in its own process on a free port, provisions it from infra/template.yaml, then writes a
campaign in its third wave: 40 % of deployments SUCCEEDED, 1 % FAILED, ``max_in_flight`` minus
``--completions`` in flight (a few of them past their timeout), the rest PENDING and due, with the
schedule a running campaign has (rosters, each wave's cursor past what earlier ticks handled, one
hint per in-flight deployment). Between measured ticks, ``--completions`` vehicles report SUCCEEDED
(through apply_ota_reports, not timed), so each tick notifies that many vehicles (sign, store and
push a job document each, then record the notices in one batch of sent hints), times out the
overdue ones and advances the campaign. Each tick also does the background work of a steady state:
``--completions`` hints of finished deployments come due and are dropped. Prints the median tick,
the CPU seconds of the moto server and of the tick's process, and the ratio to one Scan of the
deployments table (the least a tick that reads every deployment would cost). With ``--json`` it also
prints one JSON line at the end (median tick, per-tick seconds and CPU figures) for
bench/update_tick_ab.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import botocore.client
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.local_moto import free_port, start_local_moto
from fleetota_core.adapters.clients import client_factory
from fleetota_core.adapters.dynamo_items import to_item
from fleetota_core.adapters.vehicle_registry import VehicleRegistry
from fleetota_core.composition import campaign_ports
from fleetota_core.domain.campaign import Campaign, CampaignCounters, CampaignSpec, CampaignState, WaveSpec
from fleetota_core.domain.deployment import Deployment, Lane, deployment_id, recount
from fleetota_core.domain.deployment import DeploymentState as S
from fleetota_core.domain.eligibility import EligibilityRules
from fleetota_core.domain.report_signature import public_key_pem
from fleetota_core.domain.telemetry import OtaReport, OtaStatus
from fleetota_core.domain.vehicle_identity import RegisteredVehicle
from fleetota_core.domain.vin import with_check_digit
from fleetota_core.local.provision import provision
from fleetota_core.local.stack_spec import read_stack_spec
from fleetota_core.services.campaigns.releases import publish_release
from fleetota_core.services.campaigns.reports import apply_ota_reports
from fleetota_core.services.campaigns.tick import run_tick
from fleetota_core.settings import Settings

if TYPE_CHECKING:
    import subprocess

NOW = datetime.now(UTC).replace(microsecond=0)
MODEL = "Tesla Model 3"
CAMPAIGN = "cbench-000001"


def vin(n: int) -> str:
    return with_check_digit(f"5YJ3E1EA0P{n:07d}")


def setup(
    clients, resources, total: int, max_in_flight: int, completions: int, overdue: int, ticks: int
) -> list[str]:
    ports = campaign_ports(clients, resources)
    vehicles = [vin(i) for i in range(total)]
    pending_start = int(total * 0.41)
    in_flight = max_in_flight - completions
    # Vehicles exist for the deployments ticks will look at (the first pending ones) and for reports.
    interesting = vehicles[pending_start : pending_start + 20 * completions] + vehicles[:in_flight]
    for v in interesting:
        item = {"vin": v, "make": "Tesla", "model": MODEL, "model_year": 2023, "hw_rev": "HW4",
                "firmware_version": "1.0.0", "region": "us-west", "timezone": "America/Los_Angeles",
                "last_ts": NOW.isoformat(), "soc_pct": 80.0, "charging": False, "drive_state": "parked",
                "network": "LTE", "signal_dbm": -80, "online": True}  # fmt: skip
        clients.dynamodb.put_item(TableName=resources.vehicles_table, Item=to_item(item))
    # Eligibility reads the registry too: an unregistered vehicle is deferred, never notified.
    pem = public_key_pem(ec.generate_private_key(ec.SECP256R1()))  # these vehicles never sign
    VehicleRegistry.of_stack(clients.dynamodb, resources).put_many(
        RegisteredVehicle(vin=v, make="Tesla", model=MODEL, model_year=2023, hw_rev="HW4", region="us-west",
                          public_key_pem=pem, provisioned_at=NOW)
        for v in interesting
    )  # fmt: skip
    release = publish_release(
        b"x" * 4096, "2.0.0", [MODEL], [], None, "bench", "bench", ports, allowed_models={MODEL}
    )
    sizes = [total // 100, total * 9 // 100, total - total // 100 - total * 9 // 100]
    spec = CampaignSpec(
        name="bench", release_version="2.0.0", max_in_flight=max_in_flight,
        waves=tuple(WaveSpec(size=n, error_threshold_pct=50) for n in sizes),
        eligibility=EligibilityRules(min_soc_pct=20),
    )  # fmt: skip
    wave_of = [w for w, n in enumerate(sizes) for _ in range(n)]

    def deployment(i: int, v: str) -> Deployment:
        if i < in_flight:  # the first ``in_flight`` vehicles (of the SUCCEEDED range) are in flight
            late = i < overdue
            return Deployment(
                CAMPAIGN, v, wave_of[i], S.INSTALLING, version=1, attempt=1, from_version="1.0.0",
                next_action_at=NOW - timedelta(minutes=1) if late else NOW + timedelta(hours=1),
                notified_at=NOW - timedelta(hours=2) if late else NOW,
            )  # fmt: skip
        if i < int(total * 0.40):
            state, at = S.SUCCEEDED, NOW - timedelta(hours=2)
        elif i < pending_start:
            state, at = S.FAILED, NOW - timedelta(hours=2)
        elif i < pending_start + 20 * completions:
            state, at = S.PENDING, NOW - timedelta(minutes=5) + timedelta(milliseconds=i - pending_start)
        else:
            state, at = S.PENDING, NOW - timedelta(minutes=1)
        attempt = 0 if state is S.PENDING else 1
        return Deployment(
            CAMPAIGN,
            v,
            wave_of[i],
            state,
            version=1,
            attempt=attempt,
            next_action_at=at,
            from_version="1.0.0",
        )

    deployments = [deployment(i, v) for i, v in enumerate(vehicles)]
    counts = recount([(d.state, d.wave) for d in deployments], len(sizes))
    started = time.perf_counter()
    ports.deployments.put_many(deployments)
    for wave in range(len(sizes)):
        ports.schedule.put_roster(CAMPAIGN, wave, [d.vin for d in deployments if d.wave == wave])
    print(f"wrote {total:,} deployments in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    # The schedule earlier ticks would have left: every in-flight deployment hinted at its deadline
    # (its sent hint), plus per tick ``completions`` hints of deployments that have since finished.
    schedule = ports.schedule
    schedule.hint_many(CAMPAIGN, Lane.ACTIVE, [(NOW - timedelta(minutes=1), v) for v in vehicles[:overdue]])
    schedule.hint_many(
        CAMPAIGN, Lane.ACTIVE, [(NOW + timedelta(hours=1), v) for v in vehicles[overdue:in_flight]]
    )
    finished = vehicles[in_flight : in_flight + ticks * completions]
    background = [
        (NOW + timedelta(seconds=n // completions, milliseconds=-1), v) for n, v in enumerate(finished)
    ]
    schedule.hint_many(CAMPAIGN, Lane.ACTIVE, background)
    ports.campaigns.put_new(
        Campaign(
            campaign_id=CAMPAIGN, spec=spec, release=release, state=CampaignState.RUNNING, current_wave=2,
            wave_sizes=tuple(sizes), counters=CampaignCounters(), created_at=NOW, created_by="bench",
            updated_at=NOW,
        )
    )  # fmt: skip
    ports.campaigns.set_counters(CAMPAIGN, counts)
    cursors = (sizes[0], sizes[1], pending_start - sizes[0] - sizes[1])
    for wave, position in enumerate(cursors):
        ports.campaigns.advance_cursor(CAMPAIGN, wave, position)
    return vehicles[overdue:in_flight]


def complete(ports, vins: list[str]) -> None:
    reports = [
        (v, OtaReport(campaign_id=CAMPAIGN, deployment_id=deployment_id(CAMPAIGN, v),
                      status=OtaStatus.SUCCEEDED,
                      target_version="2.0.0"))
        for v in vins
    ]  # fmt: skip
    apply_ota_reports(reports, ports, now=NOW)


def _moto_process() -> tuple[subprocess.Popen[bytes], int]:
    """The local stack's moto server (DynamoDB writes serialised, as ``local up`` runs it), in its own
    process: the tick's client gets the GIL alone."""
    port = free_port()
    return start_local_moto(port, timeout_s=30), port


class CallCounter:
    """Counts AWS requests, and the Query requests (and their seconds) on the deployments table."""

    def __init__(self, deployments_table: str) -> None:
        self.calls = 0
        self.query_s = 0.0
        self.queries = 0
        self.other_queries = 0
        self.by_operation: dict[str, list[float]] = {}  # operation -> [requests, seconds]
        self._original = botocore.client.BaseClient._make_api_call
        counter = self

        def counted(client, operation, params):
            started = time.perf_counter()
            try:
                return counter._original(client, operation, params)
            finally:
                counter.calls += 1
                spent = counter.by_operation.setdefault(operation, [0, 0.0])
                spent[0] += 1
                spent[1] += time.perf_counter() - started
                if operation == "Query" and params.get("TableName") == deployments_table:
                    counter.queries += 1
                    counter.query_s += time.perf_counter() - started
                elif operation == "Query":
                    counter.other_queries += 1

        self._counted = counted

    def __enter__(self) -> CallCounter:
        botocore.client.BaseClient._make_api_call = self._counted
        return self

    def __exit__(self, *exc: object) -> None:
        botocore.client.BaseClient._make_api_call = self._original


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=100_000)
    parser.add_argument("--ticks", type=int, default=5)
    parser.add_argument("--max-in-flight", type=int, default=1000)
    parser.add_argument("--completions", type=int, default=50, help="reports between ticks")
    parser.add_argument("--overdue", type=int, default=10, help="in-flight deployments past their timeout")
    parser.add_argument(
        "--json", action="store_true", help="also print one JSON line of the figures at the end"
    )
    args = parser.parse_args()
    server, port = _moto_process()
    settings = Settings(mode="local", local_port=port)
    clients = client_factory(settings)
    spec = read_stack_spec(settings)
    provision(spec, clients)
    resources = spec.resources
    ports = campaign_ports(clients, resources)
    in_flight = setup(
        clients, resources, args.deployments, args.max_in_flight, args.completions, args.overdue, args.ticks
    )
    durations: list[float] = []
    queries: list[float] = []
    server_cpus: list[float] = []
    tick_cpus: list[float] = []
    requests: list[int] = []
    for n in range(args.ticks):
        complete(ports, in_flight[n * args.completions : (n + 1) * args.completions])
        started = time.perf_counter()
        cpu = cpu_seconds(server.pid), time.process_time()
        with CallCounter(resources.deployments_table) as calls:
            result = run_tick(ports, NOW + timedelta(seconds=n))
        durations.append(time.perf_counter() - started)
        server_cpu, tick_cpu = cpu_seconds(server.pid) - cpu[0], time.process_time() - cpu[1]
        queries.append(calls.query_s)
        server_cpus.append(server_cpu)
        tick_cpus.append(tick_cpu)
        requests.append(calls.calls)
        print(f"tick {n + 1}: {durations[-1]:.3f} s  notified {result.notified} timed out {result.timed_out} "
              f"deferred {result.deferred}; {calls.calls} AWS requests, {calls.other_queries} ledger "
              f"queries, {calls.queries} deployments-table queries ({calls.query_s:.3f} s); CPU: "
              f"server {server_cpu:.2f} s, tick {tick_cpu:.2f} s",
              file=sys.stderr)  # fmt: skip
        top = sorted(calls.by_operation.items(), key=lambda kv: -kv[1][1])
        print("  " + ", ".join(f"{op} {n:.0f}x {t:.2f}s" for op, (n, t) in top), file=sys.stderr)
    started = time.perf_counter()
    scanned = sum(
        page["Count"]
        for page in clients.dynamodb.get_paginator("scan").paginate(TableName=resources.deployments_table)
    )
    scan_s = time.perf_counter() - started
    tick_s = statistics.median(durations)
    print(f"update tick, {args.deployments:,} deployments, steady state: median {tick_s:.3f} s over "
          f"{args.ticks} "
          f"ticks (min {min(durations):.3f}, max {max(durations):.3f}); one Scan of the deployments table "
          f"({scanned:,} items) takes {scan_s:.1f} s = {scan_s / tick_s:.0f}x a tick; "
          f"median time in deployments-table queries {statistics.median(queries):.3f} s")  # fmt: skip
    if args.json:
        print(json.dumps({
            "bench": "update_tick", "deployments": args.deployments, "ticks": args.ticks,
            "median_tick_s": tick_s, "tick_s": durations, "server_cpu_s": server_cpus,
            "tick_cpu_s": tick_cpus, "aws_requests": requests, "scan_s": scan_s,
        }))  # fmt: skip
    server.terminate()
    server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
