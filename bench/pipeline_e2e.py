"""End to end: the simulator's fleet through the local stack, with lag percentiles and backlog.

    .venv/bin/python bench/pipeline_e2e.py [--vehicles 10000] [--interval 10] [--minutes 5.5]

Starts its own moto server as ``local up`` does (``start_moto``: the speedups, serialised DynamoDB
writes and a snapshot of the state every 10 s; a separate process, on a free port, so a running
``local up`` is left alone; ``--plain-moto`` for ``python -m moto.server``), provisions it from
infra/template.yaml, runs the LocalRuntime (SQS poller, schedules, alarms) in this process and
``python -m simulator`` as a subprocess. Unless ``--no-prime``, each vehicle's first reading is
ingested before the measured run (a fleet the platform already knows). Every 10 s it samples the
telemetry queue's depth, the ledger counters and the local stack's last snapshot pause. At the end
it prints:

* lag from record time to stored state per record (bench/record_lag.py), p50/p95/p99/mean/max,
  separately for on-time readings (an online vehicle's new reading: the target applies to these)
  and for store-and-forward readings (held by a vehicle while offline, late by design), after the
  warm-up minute and over the whole run; the simulator uploads every ``--flush-seconds``;
* the same from the ledger's lag histogram (all records, taken when processing of the object
  starts), and the pipeline's own lag, object created (S3 event time) to processed;
* the queue depth over time (backlog), and whether it grows;
* every AWS request the handlers and the event source (SQS polling) made, by operation (DynamoDB
  also by table, bench/request_count.py), and apart the processor's registry reads (requests and
  VINs) and registry change feed reads, plus the simulator's PutObject calls (= objects), per
  1,000 records, for docs/cost-model.md, and their sum end to end; apart, the requests of
  CloudWatch's own work that the local runtime emulates (EMF extraction, alarms), which AWS does
  without a billed request; the processor's invocations and objects per invocation;
* apart, the processor's reads and writes of the vehicles table per 1,000 records, and how it
  decided them: on the record's ``changed`` (no read) or on the stored state (read via its cache);
* with ``--campaign-vehicles N``, a campaign of a signed release to N vehicles starts with the run,
  so the vehicles' signed OTA reports flow (and are verified against the registry's keys) alongside
  the telemetry; its deployment states and the OTA counters are printed. ``--campaign-at S`` creates
  it S seconds into the run instead, so that its first notice wave (``--campaign-in-flight``
  vehicles signed and notified in one tick) falls in the measured minutes;
* "last seen" freshness: at each sample after the warm-up, the age (sample time - ``last_ts``) of
  every vehicle in the fleet snapshot that last reported a network, p50/p95/max, and how many of them
  the snapshot called offline (the 5-minute rule) at worst. Read with an uncounted client;
* the share of a core the moto server, the simulator and this process (runtime and handlers) used
  after the warm-up, and each function's invocation durations. ``--one-invocation-at-a-time``
  runs the previous local runtime (no function runs while the other does) for a same-run baseline.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.local_moto import free_port, start_local_moto, start_plain_moto  # noqa: E402
from bench.record_lag import RecordLagProbe  # noqa: E402
from bench.request_count import RequestCounter, requests_only  # noqa: E402
from fleetota_core.adapters.clients import ClientFactory, client_factory  # noqa: E402
from fleetota_core.adapters.fleet_snapshot_reads import read_fleet_snapshot  # noqa: E402
from fleetota_core.adapters.queue_reader import queue_depth  # noqa: E402
from fleetota_core.domain.enrichment import OFFLINE_AFTER  # noqa: E402
from fleetota_core.local.provision import provision  # noqa: E402
from fleetota_core.local.runtime import LocalRuntime  # noqa: E402
from fleetota_core.local.server import control_request  # noqa: E402
from fleetota_core.local.stack_spec import read_stack_spec  # noqa: E402
from fleetota_core.services.ingest.stats import ledger_counters, summarize  # noqa: E402
from fleetota_core.settings import Settings  # noqa: E402

WARM_UP_S = 60.0
SAMPLE_S = 10.0


def registry_reads(requests: Counter[str], per_1000: float) -> dict[str, float]:
    def processor(key: str) -> float:
        return round((requests.get(key, 0) - requests.get(f"update_manager:{key}", 0)) * per_1000, 3)

    return {
        "batch_get_item_requests": processor("dynamodb.BatchGetItem[registry]"),
        "vins_read": processor("dynamodb.BatchGetItem[registry].items"),
        "change_feed_get_item": processor("dynamodb.GetItem[registry change feed]"),
    }


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds a process (this one by default) has used so far, from /proc."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_sample(moto_pid: int, simulator_pid: int) -> tuple[float, float, float, float]:
    """(now, CPU seconds of the moto server, of the simulator, of this process)."""
    return time.monotonic(), cpu_seconds(moto_pid), cpu_seconds(simulator_pid), cpu_seconds()


def delta(after: Counter[str], before: Counter[str]) -> Counter[str]:
    return Counter({k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)})


def last_seen_ages(clients: ClientFactory, resources: Any, now: float) -> tuple[list[float], int]:
    """(ages in s of vehicles that last reported a network, how many of those that reported within the
    offline rule's 5 minutes the snapshot calls offline). One silent for longer is rightly offline: a
    vehicle the simulator took off the network after a reading that had one."""
    document = read_fleet_snapshot(clients, resources)
    rows = document.rows() if document is not None else {}
    reporting = [r for r in rows.values() if r["network"] not in (None, "NONE") and r["last_ts_ms"]]
    ages = [now - r["last_ts_ms"] / 1000 for r in reporting]
    within = OFFLINE_AFTER.total_seconds()
    return ages, sum(1 for r, age in zip(reporting, ages, strict=True) if not r["online"] and age < within)


def vehicle_state_figures(
    measured: Counter[str], requests: Counter[str], per_1000: float
) -> dict[str, float]:
    """What the processor read and wrote of the vehicles table per 1,000 records (the update manager's
    reads of it apart), and how its decisions were made: on the record's ``changed`` (no read) or on
    the stored state (read through the per-process cache, so fewer table reads than decisions)."""
    op = "dynamodb.BatchGetItem[vehicles]"
    return {
        "processor_batch_get_item": round((requests[op] - requests[f"update_manager:{op}"]) * per_1000, 3),
        "processor_batch_get_item_keys": round(
            (requests[f"{op}.items"] - requests[f"update_manager:{op}.items"]) * per_1000, 3
        ),
        "update_manager_batch_get_item": round(requests[f"update_manager:{op}"] * per_1000, 3),
        "decided_on_stored_state": round(measured["vehicle_states_read"] * per_1000, 3),
        "decided_on_changed_flag": round(measured["vehicle_state_reads_avoided"] * per_1000, 3),
        "writes": round(measured["vehicle_writes"] * per_1000, 3),
        "writes_deferred": round(measured["vehicle_writes_deferred"] * per_1000, 3),
    }


def percentile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else None


def wait_for_vehicle_subscription(clients: ClientFactory, resources: Any, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        subscriptions = clients.sns.list_subscriptions_by_topic(TopicArn=resources.job_topic_arn)
        if any("-sim-jobs-" in s["Endpoint"] for s in subscriptions.get("Subscriptions", [])):
            return
        time.sleep(0.5)
    raise SystemExit(f"the simulator's vehicles did not subscribe to job notices within {timeout_s:g} s")


def primed_vehicles(clients: ClientFactory, resources: Any) -> int:
    """The vehicles in the vehicles table: those of the primed fleet that sent (a few were offline)."""
    pages = clients.dynamodb.get_paginator("scan").paginate(
        TableName=resources.vehicles_table, Select="COUNT"
    )
    return sum(page["Count"] for page in pages)


def wait_for_snapshot(clients: ClientFactory, resources: Any, vehicles: int, timeout_s: float = 300) -> None:
    """Targeting reads the fleet snapshot, which takes in a new vehicle once its delta has settled
    and a tick merged it (about a minute): wait until the primed fleet (those that sent) is in it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        document = read_fleet_snapshot(clients, resources)
        if document is not None and len(document.rows()) >= vehicles:
            return
        time.sleep(5)
    raise SystemExit(f"the fleet snapshot did not hold the {vehicles} primed vehicles within {timeout_s:g} s")


def campaign_spec(clients: ClientFactory, resources: Any, vehicles: int, in_flight: int) -> Any:
    """Publish the demo release for the fleet's most common models; a campaign spec that rolls it
    out to ``vehicles`` of them in two waves (10 %, then the rest), at most ``in_flight`` at a time.

    Picking the vehicles reads the whole registry: the benchmark's shortcut to a VIN list, not the
    operator's path (the dashboard targets by filter from the fleet snapshot), so it is done before
    the measured run and only ``create_campaign`` runs at ``--campaign-at``."""
    from fleetota_core.adapters.vehicle_registry import VehicleRegistry
    from fleetota_core.composition import campaign_ports
    from fleetota_core.domain.campaign import CampaignSpec, TargetFilter, WaveSpec
    from fleetota_core.local.demo import DEMO_RELEASE_VERSION, demo_firmware_image, demo_release_target
    from fleetota_core.services.campaigns.releases import publish_release

    ports = campaign_ports(clients, resources)
    fleet = [v.model_dump() for v in VehicleRegistry(clients.dynamodb, resources.registry_table).all()]
    release = ports.releases.get_release(DEMO_RELEASE_VERSION)
    if release is None:
        models, hw_revs = demo_release_target(fleet)
        publish_release(
            demo_firmware_image(), DEMO_RELEASE_VERSION, models, hw_revs, None, "benchmark release",
            "bench", ports, filename="bench.bin",
        )  # fmt: skip
    else:  # the simulator published the demo release already
        models = list(release.manifest.models)
    vins = sorted(v["vin"] for v in fleet if v["model"] in models)[:vehicles]
    return CampaignSpec(
        name="pipeline benchmark",
        release_version=DEMO_RELEASE_VERSION,
        target=TargetFilter(vins=tuple(vins)),
        waves=(WaveSpec(percent=10), WaveSpec(percent=100)),
        max_in_flight=in_flight,
    )


def start_campaign(clients: ClientFactory, resources: Any, spec: Any) -> str:
    """Create the campaign ``spec`` describes; its id."""
    from fleetota_core.composition import campaign_ports
    from fleetota_core.services.campaigns.create import create_campaign

    return create_campaign(
        spec, "bench", campaign_ports(clients, resources), reason="pipeline benchmark"
    ).campaign_id


def campaign_summary(clients: ClientFactory, resources: Any, campaign_id: str) -> dict[str, Any]:
    from fleetota_core.composition import campaign_ports

    ports = campaign_ports(clients, resources)
    campaign = ports.campaign(campaign_id)
    deployments = list(ports.deployments.for_campaign(campaign_id))
    states = Counter(d.state.value for d in deployments)
    deferred = Counter(d.reason or "?" for d in deployments if d.state.value == "DEFERRED")
    return {
        "campaign_id": campaign_id,
        "campaigns_in_stack": len(ports.campaigns.list_all()),
        "state": campaign.state.value,
        "deployments": dict(states),
        "deferred_because": dict(deferred.most_common()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--minutes", type=float, default=5.5, help="simulated run length (wall clock)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--flush-seconds", type=float, default=2.0, help="the simulator's upload cadence")
    parser.add_argument("--out", type=Path, help="also write the result JSON here")
    parser.add_argument(
        "--campaign-vehicles",
        type=int,
        default=0,
        help="roll a signed release out to this many vehicles during the run (signed OTA reports)",
    )
    parser.add_argument(
        "--campaign-in-flight", type=int, default=100, help="the campaign's max_in_flight (default 100)"
    )
    parser.add_argument(
        "--campaign-at",
        type=float,
        default=0.0,
        help="create the campaign this many seconds into the run (default 0: before it starts)",
    )
    parser.add_argument(
        "--batching-window",
        type=float,
        default=None,
        help="the event source's MaximumBatchingWindowInSeconds (default: infra/template.yaml's)",
    )
    parser.add_argument(
        "--one-invocation-at-a-time",
        action="store_true",
        help="the previous local runtime: no function runs while another does (one lock for both)",
    )
    parser.add_argument("--no-prime", dest="prime", action="store_false", help="start with an empty table")
    parser.add_argument(
        "--plain-moto",
        action="store_true",
        help="plain `python -m moto.server` instead of the local stack's moto (runs before 2026-12-01)",
    )
    args = parser.parse_args(argv)

    port = free_port()
    state_dir = Path(tempfile.mkdtemp(prefix="fleetota-bench-state-"))
    atexit.register(shutil.rmtree, state_dir, True)
    # moto as ``local up`` runs it (bench/local_moto.py: the speedups, one DynamoDB write at a time, a
    # snapshot of its state every 10 s that pauses requests while it pickles); ``--plain-moto``:
    # ``python -m moto.server``, what this benchmark ran before 2026-12-01 21:40.
    moto = start_plain_moto(port) if args.plain_moto else start_local_moto(port, state_dir)
    atexit.register(stop_process, moto)
    settings = Settings(mode="local", local_host="127.0.0.1", local_port=port)
    clients = client_factory(settings)
    spec = read_stack_spec(settings)
    if args.batching_window is not None:
        spec.queue_sources[:] = [
            dataclasses.replace(source, batching_window_s=args.batching_window)
            for source in spec.queue_sources
        ]
    provision(spec, clients)
    counter = RequestCounter(spec.resources)
    counter.watch(clients)  # what the handlers and the event source (SQS polling) ask of AWS
    probe = RecordLagProbe()
    probe.install()
    # A 5 s long poll, nearer Lambda's 20 s: each empty receive is a request too.
    runtime = LocalRuntime(settings, clients=clients, spec=spec, poll_wait_seconds=5)
    emulation = RequestCounter(spec.resources)
    emulation.watch(runtime.service_clients)  # CloudWatch's own work, which AWS does without requests
    invocations: Counter[str] = Counter()
    durations: dict[str, list[tuple[float, float]]] = {name: [] for name in runtime.functions}
    ticks: list[tuple[float, float, Any]] = []  # the update manager's (end, seconds, response)
    one_at_a_time = threading.Lock() if args.one_invocation_at_a_time else contextlib.nullcontext()
    for name, function in runtime.functions.items():
        invoke = function.invoke

        def counted(event: dict[str, Any], _invoke: Any = invoke, _name: str = name) -> Any:
            invocations[_name] += 1
            with one_at_a_time:
                invocation = _invoke(event)
            durations[_name].append((time.monotonic(), invocation.duration_ms / 1000))
            if _name == spec.resources.update_function:
                ticks.append((time.monotonic(), invocation.duration_ms / 1000, invocation.response))
            return invocation

        function.invoke = counted  # type: ignore[method-assign]
    reader = ClientFactory(settings)  # not counted: the benchmark's own reads
    env = {
        **os.environ,
        "FLEETOTA_MODE": "local",
        "FLEETOTA_LOCAL_HOST": "127.0.0.1",
        "FLEETOTA_LOCAL_PORT": str(port),
        # The vehicles' OTA memory (installed versions, used jobs) is this run's, not a previous one's.
        "FLEETOTA_STATE_DIR": tempfile.mkdtemp(prefix="fleetota-bench-"),
    }
    duration = args.minutes * 60
    runtime.start()
    prime_s = 0.0
    if args.prime:
        # A fleet the platform already knows: each vehicle's first reading (all of them new, so all
        # written) is processed before the measured run, which then shows the steady state.
        primed = time.monotonic()
        primer = subprocess.run(
            [sys.executable, "-m", "simulator", "--vehicles", str(args.vehicles), "--interval",
             str(args.interval), "--ticks", "1", "--speed", "0", "--batch-size", str(args.batch_size),
             "--seed", "1", "--quiet"],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        # "done: ... readings = N sent + ...": wait until the pipeline has received all N.
        sent = int(re.search(r"= ([\d,]+) sent", primer.stdout).group(1).replace(",", ""))
        while ledger_counters(reader, spec.resources)["received"] < sent:
            time.sleep(2)
        while sum(queue_depth(reader.sqs, spec.resources.telemetry_queue_url).values()):
            time.sleep(1)
        prime_s = round(time.monotonic() - primed, 1)
        print(json.dumps({"primed_vehicles_s": prime_s}), flush=True)
    simulator = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--vehicles", str(args.vehicles),
         "--interval", str(args.interval), "--duration", str(duration),
         "--batch-size", str(args.batch_size), "--flush-seconds", str(args.flush_seconds),
         "--seed", "1", "--quiet", *(["--fleet-known"] if args.prime else [])],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    atexit.register(stop_process, simulator)
    if args.campaign_vehicles:
        # Notices go out only once the vehicles listen: a notice published before the simulator's
        # queue exists is lost, and its vehicle waits NOTIFIED until the job times out.
        wait_for_vehicle_subscription(clients, spec.resources)
        expected = primed_vehicles(reader, spec.resources) if args.prime else 1  # those that sent
        wait_for_snapshot(ClientFactory(settings), spec.resources, expected)
    created: list[str] = []
    creating_s: list[float] = []

    # Not counted: creating the campaign is the operator's work, not the pipeline's.
    creator_clients = ClientFactory(settings)
    if args.campaign_vehicles:
        rollout = campaign_spec(
            creator_clients, spec.resources, args.campaign_vehicles, args.campaign_in_flight
        )

    def create() -> None:
        began = time.monotonic()
        created.append(start_campaign(creator_clients, spec.resources, rollout))
        creating_s.append(round(time.monotonic() - began, 2))

    creator = None  # a campaign created ``--campaign-at`` seconds into the run, else before it
    if args.campaign_vehicles and args.campaign_at:
        creator = threading.Timer(args.campaign_at, create)
    elif args.campaign_vehicles:
        create()
    started = time.monotonic()
    started_wall = time.time()
    if creator is not None:
        creator.start()
    probe.recording = True  # the measured run only, not the priming
    snapshot_reader = reader
    seen_ages: list[float] = []
    false_offline = 0
    primed_counters = ledger_counters(reader, spec.resources)
    samples: list[dict[str, Any]] = []
    snapshot_pauses_ms: list[float] = []  # the local stack's last snapshot pause, at each sample
    warm_counters: Counter[str] | None = None
    warm_calls: Counter[str] | None = None
    warm_emulated: Counter[str] | None = None
    warm_invocations: Counter[str] | None = None
    warm_cpu = end_cpu = (0.0, 0.0, 0.0, 0.0)
    try:
        while simulator.poll() is None:
            time.sleep(SAMPLE_S)
            elapsed = time.monotonic() - started
            depth = queue_depth(reader.sqs, spec.resources.telemetry_queue_url)
            counters = ledger_counters(reader, spec.resources)
            samples.append(
                {"t_s": round(elapsed), "backlog": depth["visible"] + depth["in_flight"], **depth,
                 "stored": counters["stored"], "objects": counters["objects"]}
            )  # fmt: skip
            print(json.dumps(samples[-1]), flush=True)
            persistence = control_request(f"http://127.0.0.1:{port}", "persistence", timeout=5)
            if persistence is not None and elapsed >= WARM_UP_S:
                snapshot_pauses_ms.append(persistence.get("last_pause_ms") or 0.0)
            if warm_counters is None and elapsed >= WARM_UP_S:
                warm_counters, warm_calls = counters, counter.snapshot()
                warm_emulated, warm_invocations = emulation.snapshot(), Counter(invocations)
                warm_cpu = cpu_sample(moto.pid, simulator.pid)
            if elapsed >= WARM_UP_S:
                ages, offline = last_seen_ages(snapshot_reader, spec.resources, time.time())
                seen_ages += ages
                false_offline = max(false_offline, offline)
            if warm_counters is not None:
                end_cpu = cpu_sample(moto.pid, simulator.pid)
        simulator_stopped = time.monotonic()
        sim_output = simulator.stdout.read().decode() if simulator.stdout else ""
        # Let the pipeline finish what the simulator sent, then measure.
        drain_deadline = time.monotonic() + 120
        while time.monotonic() < drain_deadline:
            depth = queue_depth(reader.sqs, spec.resources.telemetry_queue_url)
            if depth["visible"] + depth["in_flight"] == 0:
                break
            time.sleep(2)
        drained_after_s = round(time.monotonic() - simulator_stopped, 1)
    finally:
        runtime.stop()
        probe.uninstall()
        if simulator.poll() is None:
            simulator.kill()
    final = ledger_counters(reader, spec.resources)
    measured = delta(final, warm_counters or Counter())
    requests = delta(counter.snapshot(), warm_calls or Counter())
    emulated = delta(emulation.snapshot(), warm_emulated or Counter())
    invoked = delta(invocations, warm_invocations or Counter())
    per_1000 = 1000 / max(1, measured["received"])
    processor_invocations = invoked.get(spec.resources.telemetry_function, 0)
    steady = summarize(measured, None)
    backlog = [s["backlog"] for s in samples if s["t_s"] >= WARM_UP_S]
    third = max(1, len(backlog) // 3)
    result = {
        "vehicles": args.vehicles,
        "interval_s": args.interval,
        "run_s": round(duration),
        "records_offered_per_s": round(args.vehicles / args.interval),
        "priming_s": prime_s,
        "flush_seconds": args.flush_seconds,
        "batching_window_s": [source.batching_window_s for source in spec.queue_sources],
        "one_invocation_at_a_time": args.one_invocation_at_a_time,
        "record_lag_after_warm_up": probe.summary(started_wall + WARM_UP_S),
        "record_lag_whole_run": probe.summary(started_wall),
        "totals": summarize(delta(final, primed_counters), None),
        "snapshot_last_seen_after_warm_up": {
            "samples": len(seen_ages),
            "age_p50_s": percentile(seen_ages, 0.5),
            "age_p95_s": percentile(seen_ages, 0.95),
            "age_max_s": percentile(seen_ages, 1.0),
            "reported_within_5_min_but_offline_max": false_offline,
        },
        "after_warm_up": {
            "records": measured["received"],
            "objects": measured["objects"],
            "record_lag_ms": steady["lag_ms"],
            "object_lag_ms": steady["object_lag_ms"],
            "vehicle_writes": measured["vehicle_writes"],
            "vehicle_writes_skipped": measured["vehicle_writes_skipped"],
            "vehicle_writes_deferred": measured["vehicle_writes_deferred"],
            "stale_vehicle_readings": measured["stale_vehicle_readings"],
            # Over the simulator's time after warm-up: it started before the campaign (and ``started``).
            "records_per_s": round(measured["received"] / max(1.0, simulator_stopped - warm_cpu[0]), 1),
        },
        "backlog": {
            "samples": backlog,
            "max": max(backlog, default=0),
            "mean_first_third": statistics.fmean(backlog[:third]) if backlog else 0,
            "mean_last_third": statistics.fmean(backlog[-third:]) if backlog else 0,
            "drained_s_after_simulator_stopped": drained_after_s,
        },
        "requests_after_warm_up": dict(sorted(requests.items())),
        "requests_per_1000_records": {op: round(n * per_1000, 3) for op, n in sorted(requests.items())},
        # The processor's registry reads (the update manager's eligibility reads left out) and its
        # registry change feed reads (at most one per 10 s per process).
        "registry_per_1000_records": registry_reads(requests, per_1000),
        "vehicle_state_per_1000_records": vehicle_state_figures(measured, requests, per_1000),
        "simulator_put_object_per_1000_records": round(
            1000 * measured["objects"] / max(1, measured["received"]), 3
        ),
        # Issue #16's measure: every request on the AWS path per 1,000 records, uploads included.
        "aws_requests_per_1000_records_end_to_end": round(
            (requests_only(requests) + measured["objects"]) * per_1000, 3
        ),
        "invocations": dict(invoked),
        # Share of one core each process used after warm-up (the machine has os.cpu_count() cores).
        "cpu_cores_after_warm_up": {
            name: round((end_cpu[i] - warm_cpu[i]) / max(1e-9, end_cpu[0] - warm_cpu[0]), 2)
            for i, name in ((1, "moto server"), (2, "simulator"), (3, "runtime and benchmark"))
        },
        "invocation_seconds_after_warm_up": {
            name: {
                "n": len(kept),
                "p50": percentile(kept, 0.5),
                "p95": percentile(kept, 0.95),
                "max": percentile(kept, 1.0),
            }
            for name, runs in durations.items()
            if (kept := [seconds for at, seconds in runs if warm_cpu[0] <= at <= end_cpu[0]])
        },
        # What the slowest update-manager invocations did (their tick's own seconds are in the
        # response; the rest of the invocation is the fleet snapshot's refresh).
        "slowest_update_manager_invocations": [
            {"ended_s": round(at - started, 1), "seconds": round(seconds, 2), "response": response}
            for at, seconds, response in sorted(
                (t for t in ticks if warm_cpu[0] <= t[0] <= end_cpu[0]), key=lambda t: -t[1]
            )[:3]
        ],
        # The update manager's share follows its schedule (every local tick; on AWS once a minute).
        "update_manager_requests_per_invocation": round(
            requests_only(
                Counter(
                    {k.split(":", 1)[1]: n for k, n in requests.items() if k.startswith("update_manager:")}
                )
            )
            / max(1, invoked.get(spec.resources.update_function, 0)),
            2,
        ),
        "objects_per_processor_invocation": round(measured["objects"] / max(1, processor_invocations), 2),
        # CloudWatch's own work that the local runtime emulates (EMF extraction, AWS/* metrics, alarm
        # evaluation): AWS makes no billed request for it.
        "local_emulation_requests_per_1000_records": {
            op: round(n * per_1000, 3) for op, n in sorted(emulated.items())
        },
        "simulator": sim_output.strip().splitlines()[-1:] if sim_output else [],
        "moto": "plain moto.server" if args.plain_moto else "the local stack's (start_moto, snapshots)",
        "local_snapshot_pause_ms_after_warm_up": {
            "samples": len(snapshot_pauses_ms),
            "max": max(snapshot_pauses_ms, default=None),
            "mean": round(statistics.fmean(snapshot_pauses_ms), 1) if snapshot_pauses_ms else None,
        },
    }
    if creator is not None:
        creator.join()
    if created:
        result["campaign"] = campaign_summary(snapshot_reader, spec.resources, created[0])
        result["campaign"]["created_s_into_run"] = args.campaign_at
        result["campaign"]["create_campaign_s"] = creating_s[0]
    result["backlog"]["growing"] = result["backlog"]["mean_last_third"] > 2 * max(
        1.0, result["backlog"]["mean_first_third"]
    )
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate ``process`` if it still runs (registered with atexit, so an early exit leaves none)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        # Werkzeug can sit in a long request after SIGTERM; the result is already written.
        process.kill()
        process.wait(10)


if __name__ == "__main__":
    sys.exit(main())
