"""Creation's targeting read (candidates) gives the vehicles of the preview's (all), the same identity
and version, with the registry asked for each 100 VINs as the snapshot rows are checked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fleetota_core.adapters.vehicle_directory import SMALL_FLEET_ROWS, VehicleDirectory, candidate
from fleetota_core.domain.vin import with_check_digit
from fleetota_core.services.ingest.fleet_health import snapshot_row

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
N = SMALL_FLEET_ROWS + 1_000


def vin(n: int) -> str:
    return with_check_digit(f"5YJ3E1EA0PF{n:06d}")


def row(n: int) -> dict[str, Any]:
    values = {"make": "Tesla", "model": "M3", "model_year": 2023, "hw_rev": "HW4",
              "firmware_version": f"1.{n % 3}.0", "region": "eu", "metro": "Berlin", "last_ts": NOW,
              "last_seq": n, "soc_pct": 50.0, "network": "LTE", "signal_dbm": -80}  # fmt: skip
    if n % 97 == 0:
        values["firmware_version"] = "not a version"  # no vehicle
    if n % 89 == 0:
        values["model_year"] = 1900  # no vehicle either (the model refuses it)
    return snapshot_row(values)


class Registry:
    """The registry's projected BatchGetItem: 1 in 50 retired, 1 in 40 moved to another region."""

    def __init__(self) -> None:
        self.requests: list[int] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        (table, request), *_ = RequestItems.items()
        assert len(request["Keys"]) <= 100
        self.requests.append(len(request["Keys"]))
        items = []
        for key in request["Keys"]:
            n = int(key["vin"]["S"][11:])
            if n % 71 == 0:
                continue  # not registered
            items.append({"vin": key["vin"], "make": {"S": "Tesla"}, "model": {"S": "M3"},
                          "model_year": {"N": "2023"}, "hw_rev": {"S": "HW4"},
                          "region": {"S": "us" if n % 40 == 0 else "eu"},
                          "status": {"S": "retired" if n % 50 == 0 else "active"}})  # fmt: skip
        return {"Responses": {table: items}}


def test_candidates_are_the_vehicles_all_reads_with_the_registrys_identity() -> None:
    rows = {vin(n): row(n) for n in range(N)}
    registry = Registry()
    directory = VehicleDirectory(registry, "vehicles", "registry", lambda: rows, lambda: rows)
    candidates = directory.candidates()
    asked = list(registry.requests)
    vehicles = directory.all()
    assert candidates == [candidate(v) for v in vehicles]
    assert asked == registry.requests[len(asked) :]  # both ask the same requests
    expected = [n for n in range(N) if n % 97 and n % 89 and n % 71 and n % 50]
    assert [c.vin for c in candidates] == [vin(n) for n in expected]
    assert {c.region for c in candidates} == {"eu", "us"}  # the registry's region, not the row's
    assert all(size == 100 for size in asked[:-1]) and sum(asked) == len(
        [n for n in range(N) if n % 97 and n % 89]
    )
