"""The seam for the OTA client: a hook per vehicle per tick that can report, hold and drain."""

from __future__ import annotations

from datetime import datetime

from simulator_support import MemorySink

from fleetota_core.domain.telemetry import OtaReport, OtaStatus, TelemetryRecord
from simulator.fleet import generate_fleet
from simulator.ota import OtaEffect
from simulator.simulation import FleetSimulation
from simulator.uploader import BatchUploader

START = datetime.fromisoformat("2026-03-03T13:00:00+00:00").timestamp()


class InstallingOtaClient:
    """Holds one vehicle parked while it installs, reports progress and drains some energy."""

    def __init__(self, vin: str) -> None:
        self.vin = vin
        self.calls = 0

    def on_tick(self, vehicle: object, t: float) -> OtaEffect | None:
        self.calls += 1
        if vehicle.vin != self.vin:  # type: ignore[attr-defined]
            return None
        report = OtaReport(
            campaign_id="c-1",
            deployment_id=f"c-1#{self.vin}",
            status=OtaStatus.INSTALLING,
            progress_pct=50,
            target_version="3.5.0",
        )
        return OtaEffect(report=report, hold_parked=True, extra_energy_kwh=0.5)


def test_the_ota_client_is_called_for_every_vehicle_every_tick_and_its_report_rides_in_the_record() -> None:
    fleet = generate_fleet(40, seed=2)
    held = next(v for v in fleet if v.role == "fleet")  # fleet vans drive all afternoon
    client = InstallingOtaClient(held.vin)
    sink = MemorySink()
    sim = FleetSimulation(
        fleet, BatchUploader(sink, 1000, "ota"), start=START, interval=300, seed=2, ota_client=client
    )
    for _ in range(24):
        sim.step()
    assert client.calls == 40 * 24
    mine = [r for _, r in sink.records() if r["vin"] == held.vin]
    assert mine and all(r["ota"]["status"] == "INSTALLING" for r in mine)
    assert all(r["drive_state"] != "driving" for r in mine)  # held parked while installing
    assert all(TelemetryRecord.model_validate(r).ota is not None for r in mine)
    others = [r for _, r in sink.records() if r["vin"] != held.vin]
    assert all(r["ota"] is None for r in others)
    assert any(r["drive_state"] == "driving" for r in others)


class DrainingOtaClient:
    def __init__(self, vin: str, kwh: float) -> None:
        self.vin, self.kwh = vin, kwh

    def on_tick(self, vehicle: object, t: float) -> OtaEffect | None:
        if vehicle.vin != self.vin:  # type: ignore[attr-defined]
            return None
        return OtaEffect(extra_energy_kwh=self.kwh)


def test_energy_the_ota_client_reports_comes_out_of_the_battery() -> None:
    def final_soc(kwh: float) -> float:
        fleet = generate_fleet(10, seed=8)
        vin = fleet[0].vin
        sim = FleetSimulation(
            fleet, BatchUploader(MemorySink(), 1000, "x"), start=START, interval=60, seed=8,
            ota_client=DrainingOtaClient(vin, kwh),
        )  # fmt: skip
        for _ in range(10):
            sim.step()
        return fleet[0].soc

    baseline = final_soc(0.0)
    assert final_soc(1.0) < baseline - 5  # 10 ticks x 1 kWh is over 7 % of any pack up to 135 kWh
