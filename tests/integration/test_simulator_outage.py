"""The simulator against a real endpoint that goes away and comes back: a moto server stopped mid-run
and started again on the same port (moto keeps its state in the process, so the bucket survives)."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import datetime

from fleetota_core.adapters.clients import client_factory
from fleetota_core.adapters.telemetry_store import TelemetryStore
from fleetota_core.local.server import start_moto
from fleetota_core.settings import Settings
from simulator.__main__ import summary
from simulator.fleet import generate_fleet
from simulator.simulation import FleetSimulation
from simulator.uploader import BatchUploader, S3Sink

HOST = "127.0.0.1"
# Down for 32 ticks: long enough that the simulator used to give up (6 failed uploads) and exit.
VEHICLES, TICKS, DOWN, UP = 20, 50, 3, 35


def test_readings_are_held_while_the_endpoint_is_stopped_and_uploaded_when_it_is_back() -> None:
    # Given a simulator uploading to a moto server, each vehicle keeping at most 4 readings
    server = start_moto(HOST, 0)
    port = server.get_host_and_port()[1]
    clients = client_factory(Settings(mode="local", local_host=HOST, local_port=port))
    bucket = f"outage-{uuid.uuid4().hex[:12]}"
    clients.s3.create_bucket(Bucket=bucket)
    store = TelemetryStore(bucket, clients.s3)
    uploader = BatchUploader(S3Sink(store), 500, "outage")
    fleet = generate_fleet(VEHICLES, seed=31)
    start = datetime.fromisoformat("2026-05-12T14:00:00+00:00").timestamp()
    sim = FleetSimulation(fleet, uploader, start=start, interval=60.0, seed=31, outbox_size=4)
    try:
        for tick in range(TICKS):
            # When the endpoint stops for 32 ticks, then listens again on the same port
            if tick == DOWN:
                server.stop()
            if tick == UP:
                server = start_moto(HOST, port)
            sim.step()
        # Then the run went on (no error), and every reading is sent, held or counted as dropped
        keys = list(store.list_keys())
        sent = [
            json.loads(line) for key in keys for line in gzip.decompress(store.get_batch(key)).splitlines()
        ]
    finally:
        server.stop()
    assert uploader.outages == 1 and uploader.failed_uploads >= 2
    assert len(sent) == uploader.records_sent
    assert len(sent) + sim.held + sim.dropped + len(uploader.buffer) == sim.readings == VEHICLES * TICKS
    assert uploader.buffer == [] and sim.dropped > 0
    assert len({(r["vin"], r["seq"]) for r in sent}) == len(sent)  # none twice
    # The readings taken while it was away went up after it came back
    late = [r for r in sent if DOWN <= r["seq"] < UP]
    assert late and uploader.records_late + sim.forwarded >= len(late)
    assert f"{sim.dropped:,} dropped (oldest first, outbox 4 per vehicle)" in summary(sim, uploader)
