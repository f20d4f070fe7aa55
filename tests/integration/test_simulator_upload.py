"""The simulator uploads gzip NDJSON batches to the local stack's telemetry bucket."""

from __future__ import annotations

import gzip
import re
from typing import TYPE_CHECKING

from fleetota_core.adapters.telemetry_store import TelemetryStore
from fleetota_core.domain.telemetry import TelemetryRecord
from simulator.__main__ import main

if TYPE_CHECKING:
    import pytest

    from tests.integration.conftest import LocalStack

KEY = re.compile(r"^raw/dt=\d{4}-\d{2}-\d{2}/hour=\d{2}/[0-9TZ]+-[0-9a-f]{8}-\d{6}\.ndjson\.gz$")
SUMMARY = re.compile(r"([\d,]+) readings = ([\d,]+) sent \+ ([\d,]+) held by vehicles")


def test_the_simulator_uploads_every_reading_it_does_not_hold_to_the_telemetry_bucket(
    stack: LocalStack, capsys: pytest.CaptureFixture
) -> None:
    # Given the provisioned local stack (the fixture points FLEETOTA_* at it)
    # When 60 vehicles run 4 ticks, 25 records per object
    code = main(
        ["--vehicles", "60", "--ticks", "4", "--seed", "5", "--speed", "0", "--batch-size", "25", "--quiet"]
    )
    out = capsys.readouterr().out
    assert code == 0
    generated, sent, held = (int(g.replace(",", "")) for g in SUMMARY.search(out).groups())
    # Then the bucket holds raw/dt=.../hour=... objects with every reading that was sent
    store = TelemetryStore(stack.resources.telemetry_bucket, stack.clients.s3)
    keys = list(store.list_keys())
    assert keys and all(KEY.match(key) for key in keys)
    lines = [line for key in keys for line in gzip.decompress(store.get_batch(key)).decode().splitlines()]
    assert all(len(gzip.decompress(store.get_batch(key)).splitlines()) <= 25 for key in keys)
    assert generated == 60 * 4
    assert len(lines) == sent and sent + held == generated
    records = [TelemetryRecord.model_validate_json(line) for line in lines]
    assert len({(r.vin, r.seq) for r in records}) == sent


def test_a_missing_telemetry_bucket_is_one_error_line_and_exit_1(
    stack: LocalStack, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETOTA_TELEMETRY_BUCKET", "no-such-telemetry-bucket")
    code = main(["--vehicles", "5", "--ticks", "1", "--speed", "0", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith("error: telemetry bucket 'no-such-telemetry-bucket' does not exist")


def test_the_telemetry_pipeline_accepts_every_simulated_batch(
    stack: LocalStack, capsys: pytest.CaptureFixture
) -> None:
    # Given a simulated fleet's batches in the bucket
    assert main(["--vehicles", "40", "--ticks", "2", "--seed", "8", "--speed", "0", "--quiet"]) == 0
    capsys.readouterr()
    store = TelemetryStore(stack.resources.telemetry_bucket, stack.clients.s3)
    sent_vins = {
        TelemetryRecord.model_validate_json(line).vin
        for key in store.list_keys()
        for line in gzip.decompress(store.get_batch(key)).decode().splitlines()
    }
    # When the telemetry processor drains the queue
    result = stack.runtime.drain(timeout=60)
    # Then no batch fails and every vehicle that sent a reading is known
    assert result.received >= 1 and result.failed == 0
    items = stack.clients.dynamodb.scan(TableName=stack.resources.vehicles_table)["Items"]
    assert {item["vin"]["S"] for item in items} == sent_vins
