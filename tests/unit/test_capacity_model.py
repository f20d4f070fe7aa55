"""bench/capacity.py's arithmetic: measured per-object counts scaled to a fleet, headroom against quotas."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import capacity

SETTINGS = capacity.Settings(
    batch_size=10,
    batching_window_s=1.0,
    tick_s=60.0,
    director_key_spec="ECC_NIST_P256",
    reserved_concurrency="none",
    update_timeout_s=50.0,
)


def run(**per_1000: float) -> dict[str, Any]:
    """A 10,000-vehicle run at 10 s: 1,000-record objects, 600 s measured, 100 ms per object."""
    return {
        "vehicles": 10_000,
        "flush_seconds": 2.0,
        "simulator_put_object_per_1000_records": 1.0,
        "requests_per_1000_records": per_1000,
        "requests_after_warm_up": {"dynamodb.BatchGetItem.items": 12_000},
        "after_warm_up": {
            "records": 600_000,
            "records_per_s": 1000.0,
            "vehicle_writes": 600,
            "object_lag_ms": {"mean": 100.0},
        },
    }


def by_operation(rows: list[capacity.Row]) -> dict[str, float]:
    return {row.operation: row.rate for row in rows}


def test_doubling_the_fleet_doubles_every_fleet_driven_rate() -> None:
    m = capacity.measured(run(**{"s3.GetObject": 2.0, "s3.PutObject": 1.0}), "synthetic")

    small = by_operation(capacity.rows(m, SETTINGS, 100_000, 10.0))
    large = by_operation(capacity.rows(m, SETTINGS, 200_000, 10.0))

    for operation in ("GET raw/ (processor)", "PUT snapshots/fleet/deltas/ (processor)"):
        assert large[operation] == pytest.approx(2 * small[operation])
    raw = next(k for k in small if k.startswith("PUT raw/ objects"))
    assert small[raw] == pytest.approx(10.0)  # 10,000 records/s in 1,000-record objects
    assert large[raw] == pytest.approx(20.0)
    writes = next(k for k in small if k.startswith("vehicles table writes"))
    assert small[writes] == pytest.approx(20.0)  # 0.1 % of 10,000 readings/s material, 2 WRU in a transaction


def test_a_longer_interval_divides_per_record_rates() -> None:
    m = capacity.measured(run(**{"s3.GetObject": 2.0}), "synthetic")

    at_10 = by_operation(capacity.rows(m, SETTINGS, 1_000_000, 10.0))
    at_60 = by_operation(capacity.rows(m, SETTINGS, 1_000_000, 60.0))

    assert at_60["GET raw/ (processor)"] == pytest.approx(at_10["GET raw/ (processor)"] / 6)


def test_headroom_below_one_is_reported_as_breaking() -> None:
    over = capacity.Row("KMS", "Sign", 600.0, "kms_ecc")  # the ECC quota is 300/s
    near = capacity.Row("KMS", "Sign", 200.0, "kms_ecc")

    assert over.headroom == pytest.approx(0.5)
    assert capacity.verdict(over.headroom) == "**breaks**"
    assert capacity.verdict(near.headroom) == "within 2x"
    assert capacity.verdict(capacity.Row("KMS", "Sign", 0.0, "kms_ecc").headroom) == "ok"


def test_the_fleet_table_marks_the_original_designs_metrics_as_breaking() -> None:
    m = capacity.measured(run(), "synthetic")

    table = capacity.fleet_table(m, SETTINGS, 1_000_000)

    line = next(x for x in table.splitlines() if "PutMetricData, one per record" in x)
    assert line.endswith("| **breaks** |")
    assert "100,000" in line  # a PutMetricData per reading: 1M vehicles every 10 s


def test_state_reads_are_at_most_one_per_record() -> None:
    m = capacity.measured(run(), "synthetic")

    rates = by_operation(capacity.rows(m, SETTINGS, 1_000_000, 60.0))

    reads = next(k for k in rates if k.startswith("vehicles table state reads"))
    assert rates[reads] == pytest.approx(0.5 * 1_000_000 / 60)  # 0.5 RRU a reading, no more


def test_requests_the_update_manager_made_on_its_schedule_do_not_scale_with_records() -> None:
    m = capacity.measured(
        run(**{"s3.GetObject": 3.0, "update_manager:s3.GetObject": 1.0, "local_only:dynamodb.GetItem": 1.0}),
        "synthetic",
    )

    assert m.per_object == {"s3.GetObject": pytest.approx(2.0)}


def test_the_local_runtimes_own_requests_are_left_out_of_older_results() -> None:
    m = capacity.measured(
        run(**{"s3.GetObject": 2.0, "cloudwatch.GetMetricData": 0.6, "dynamodb.Scan": 0.1}), "synthetic"
    )

    assert set(m.per_object) == {"s3.GetObject"}
    assert any("does not count the update manager apart" in note for note in m.notes)


def test_registry_reads_are_measured_per_vehicle_when_the_run_outlasts_the_cache() -> None:
    long = run()
    seconds = int(capacity.REGISTERED_TTL_S) + 600  # a run that outlasts the registry cache
    long["after_warm_up"]["records"] = 1000 * seconds
    measured = capacity.measured(long, "synthetic")  # 12,000 reads by 10,000 vehicles
    short = run()
    short["after_warm_up"]["records"] = 60_000  # 60 s: shorter than the registry cache
    modelled = capacity.measured(short, "synthetic")

    assert measured.registry_measured
    assert measured.registry_reads_per_vehicle_s == pytest.approx(12_000 / (10_000 * seconds))
    assert not modelled.registry_measured
    assert modelled.registry_reads_per_vehicle_s == pytest.approx(1 / capacity.REGISTERED_TTL_S)


def test_concurrent_campaigns_add_signatures_but_each_keeps_its_own_counter_item() -> None:
    m = capacity.measured(run(), "synthetic")
    four = capacity.replace(SETTINGS, campaigns=4)

    one_rates = by_operation(capacity.rows(m, SETTINGS, 1_000_000, 10.0))
    four_rates = by_operation(capacity.rows(m, four, 1_000_000, 10.0))

    sign = next(k for k in one_rates if k.startswith("Sign"))
    item = next(k for k in one_rates if k.startswith("one campaign's item"))
    assert one_rates[sign] == pytest.approx(5000 / 60)  # the per-tick bound, not 10 % of 1M
    assert four_rates[sign] == pytest.approx(4 * one_rates[sign])
    assert four_rates[item] == pytest.approx(one_rates[item])


def test_the_template_settings_follow_a_parameter_to_its_default() -> None:
    # The batching window is a template parameter (TelemetryBatchingWindowSeconds).
    from fleetota_core.infra_template import load_template

    settings = capacity.template_settings(load_template())
    assert settings.batching_window_s == 1.0 and settings.batch_size == 10
    # So is the update manager's memory (UpdateManagerMemoryMB 3538: two vCPUs, two merge parts).
    assert settings.snapshot_parts == 2
