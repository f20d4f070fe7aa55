"""The vehicle registry on the local stack: the adapter, and ``fleetota vehicle provision --csv``."""

from __future__ import annotations

import csv
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fleetota_core.adapters.vehicle_registry import VehicleRegistry
from fleetota_core.cli import main
from fleetota_core.domain.report_signature import public_key_pem
from fleetota_core.domain.vehicle_identity import RegisteredVehicle
from fleetota_core.domain.vin import with_check_digit, year_code

COLUMNS = ["vin", "make", "model", "model_year", "hw_rev", "region", "public_key"]


def vin(n: int) -> str:
    return with_check_digit(f"LPSED3KA0{year_code(2023)}L{n:06d}")


def key_text(n: int, as_point: bool = False) -> str:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    if as_point:
        return public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        ).hex()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def write_csv(path, rows: list[dict[str, str]], columns: list[str] = COLUMNS) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def fleet_rows(count: int) -> list[dict[str, str]]:
    return [
        {
            "vin": vin(n),
            "make": "Polestar",
            "model": "Polestar 2",
            "model_year": "2023",
            "hw_rev": "P2-TCU",
            "region": "eu-north",
            "public_key": key_text(n, as_point=n % 2 == 1),
        }
        for n in range(count)
    ]


def registry(stack) -> VehicleRegistry:
    return VehicleRegistry.of_stack(stack.clients.dynamodb, stack.resources)


def test_the_adapter_writes_in_batches_and_reads_the_distinct_vins_back(stack):
    key = public_key_pem(ec.generate_private_key(ec.SECP256R1()))
    vehicles = [
        RegisteredVehicle(
            vin=vin(n), make="Polestar", model="Polestar 2", model_year=2023, hw_rev="P2-TCU",
            region="eu-north", public_key_pem=key, provisioned_at=datetime.now(UTC),
        )
        for n in range(130)
    ]  # fmt: skip
    assert registry(stack).put_many(vehicles) == 130
    asked = [vin(n) for n in range(150)] + [vin(0)] * 5  # 20 never provisioned, duplicates
    found = registry(stack).get_many(asked)
    assert set(found) == {vin(n) for n in range(130)}
    assert found[vin(7)] == vehicles[7]
    assert len(registry(stack).all()) == 130


def test_provision_from_csv_registers_every_row(stack, tmp_path, capsys):
    path = tmp_path / "fleet.csv"
    write_csv(path, fleet_rows(30))
    assert main(["vehicle", "provision", "--csv", str(path)]) == 0
    assert capsys.readouterr().out.startswith("provisioned 30 vehicles")
    stored = registry(stack).get_many([vin(n) for n in range(30)])
    assert len(stored) == 30 and stored[vin(1)].model == "Polestar 2"


def test_a_bad_csv_is_one_error_line_exit_2_and_registers_nothing(stack, tmp_path, capsys):
    good = fleet_rows(3)
    cases = {
        "no-key-column": ([*good], COLUMNS[:-1], "lacks the column(s) public_key"),
        "check-digit": (
            [*good[:2], {**good[2], "vin": vin(2)[:8] + "Z" + vin(2)[9:]}],
            COLUMNS,
            "row 3: vin:",
        ),
        "bad-key": ([{**good[0], "public_key": "04" + "00" * 10}], COLUMNS, "row 1: public key:"),
        "empty-model": ([{**good[0], "model": ""}], COLUMNS, "row 1: missing model"),
        "repeat": ([good[0], good[1], good[0]], COLUMNS, f"VIN {vin(0)} repeats row 1"),
    }
    for name, (rows, columns, message) in cases.items():
        path = tmp_path / f"{name}.csv"
        write_csv(path, rows, columns)
        code = main(["vehicle", "provision", "--csv", str(path)])
        err = capsys.readouterr().err
        assert code == 2, name
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, (name, err)
    assert main(["vehicle", "provision", "--csv", str(tmp_path / "missing.csv")]) == 2
    assert "cannot read fleet CSV" in capsys.readouterr().err
    assert main(["vehicle", "provision"]) == 2
    assert "--csv FILE is required" in capsys.readouterr().err
    assert registry(stack).all() == []


def test_local_reset_provisions_a_running_simulators_fleet_again(stack, tmp_path):
    from fleetota_core.local.lifecycle import reset_stack
    from simulator.fleet import generate_fleet, write_fleet_file
    from simulator.vehicle_keys import assign_keys, register_fleet

    fleet = generate_fleet(4, 5)
    assign_keys(fleet)
    register_fleet(stack.clients, stack.resources, fleet)
    write_fleet_file(tmp_path / "fleet.json", fleet, seed=5)
    before = registry(stack).get_many([v.vin for v in fleet])

    message = reset_stack(stack.settings.model_copy(update={"state_dir": tmp_path}))

    assert "4 vehicles provisioned again" in message
    after = registry(stack).get_many([v.vin for v in fleet])
    assert {v: r.public_key_pem for v, r in after.items()} == {v: r.public_key_pem for v, r in before.items()}
