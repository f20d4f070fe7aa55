"""Health counters in every reading, at healthy base rates, and ``--bad-release`` faults on one version."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import pytest
from simulator_support import run_cli

from fleetota_core.domain.telemetry import TelemetryRecord
from simulator.__main__ import main
from simulator.health import BASE_PARKED_DRAIN_PCT_H, HealthMonitor, ReleaseFaults

if TYPE_CHECKING:
    from pathlib import Path


def _faults(*texts: str) -> ReleaseFaults:
    faults = ReleaseFaults()
    for text in texts:
        faults.add(text)
    return faults


def _hours(monitor: HealthMonitor, version: str, hours: int, rng: random.Random) -> None:
    for _ in range(hours * 60):
        monitor.tick(version, 60.0, rng)


def test_a_healthy_vehicle_sets_few_codes_and_reboots_and_drains_a_little_when_parked() -> None:
    rng = random.Random(1)
    monitors = [HealthMonitor(f"VIN{n:014d}") for n in range(50)]
    for m in monitors:
        _hours(m, "1.0.0", 100, rng)  # 5,000 vehicle-hours
    dtc = sum(m.dtc_count for m in monitors)
    reboots = sum(m.reboots for m in monitors)
    assert 10 <= dtc <= 45  # 0.5 % per hour: about 25
    assert 3 <= reboots <= 20  # 0.2 % per hour: about 10
    drains = [HealthMonitor(f"VIN{n:014d}").drain_pct_h for n in range(200)]
    assert min(drains) < BASE_PARKED_DRAIN_PCT_H < max(drains)  # each vehicle has its own rate
    assert all(0.01 < d < 0.5 for d in drains)


def test_a_bad_release_adds_its_fault_codes_only_to_vehicles_that_run_it() -> None:
    faults = _faults("3.5.0:dtc=P0A80@5")
    rng = random.Random(2)
    bad, good = HealthMonitor("A" * 17, faults), HealthMonitor("B" * 17, faults)
    _hours(bad, "3.5.0", 1000, rng)
    _hours(good, "3.4.0", 1000, rng)
    assert 35 <= bad.dtc_count <= 80  # 5 % + 0.5 % per hour over 1,000 hours: about 55
    assert good.dtc_count <= 15
    assert bad.last_dtc is not None


def test_parked_drain_three_times_as_fast_on_the_bad_release() -> None:
    faults = _faults("3.5.0:parked_drain=3")
    monitor = HealthMonitor("C" * 17, faults)
    soc = monitor.parked("3.4.0", 80.0, 3600)
    healthy = 80.0 - soc
    soc = monitor.parked("3.5.0", soc, 3600)
    assert (soc_drop := 80.0 - healthy - soc) == pytest.approx(3 * healthy)
    assert monitor.parked_drain_pct == pytest.approx(healthy + soc_drop)
    assert monitor.parked_s == 7200


def test_reboots_and_link_drops_rise_on_the_bad_release() -> None:
    faults = _faults("3.5.0:reboot=10", "3.5.0:link_drop=20")
    rng = random.Random(3)
    monitor = HealthMonitor("D" * 17, faults)
    drops = sum(1 for _ in range(100 * 60) if monitor.tick("3.5.0", 60.0, rng))
    assert 5 <= monitor.reboots <= 20  # 10.2 % per hour over 100 hours
    assert 12 <= drops <= 35  # 22 % per hour over 100 hours


def test_every_reading_carries_counters_that_only_grow(tmp_path: Path) -> None:
    run = run_cli(tmp_path, "--vehicles", "20", "--ticks", "30", "--interval", "120", "--seed", "4")
    last: dict[str, tuple[int, ...]] = {}
    for record in run.records():
        parsed = TelemetryRecord.model_validate(record)
        assert parsed.health is not None
        h = parsed.health
        now = (h.observed_s, h.dtc_count, h.reboots, h.link_drops, h.parked_s)
        before = last.get(parsed.vin, (0,) * 5)
        assert all(a >= b for a, b in zip(now, before, strict=True)), parsed.vin
        last[parsed.vin] = now
    assert max(observed for observed, *_ in last.values()) >= 29 * 120


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("3.5.0", "VERSION:EFFECT"),
        ("v3:dtc=P0A80@5", "VERSION:EFFECT"),
        ("3.5.0:melt=1", "parked_drain=FACTOR"),
        ("3.5.0:dtc=P0A8@5", "CODE@PCT_PER_HOUR"),
        ("3.5.0:dtc=P0A80", "CODE@PCT_PER_HOUR"),
        ("3.5.0:parked_drain=-1", "must be above 0"),
        ("3.5.0:reboot=abc", "is not a number"),
        ("3.5.0:link_drop=101", "at most 100"),
    ],
)
def test_a_malformed_bad_release_is_an_argument_error_without_traceback(
    value: str, complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--bad-release", value, "--out", "unused", "--ticks", "1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--bad-release" in err and complaint in err and "Traceback" not in err
