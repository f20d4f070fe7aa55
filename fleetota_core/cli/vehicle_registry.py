"""``fleetota vehicle provision --csv FILE``: import a real fleet into the vehicle registry.

Every row is checked before anything is written (VIN and its check digit, required columns, a P-256
public key as PEM or as an uncompressed point in hex); the first bad row is one ``error:`` line and
exit 2, and nothing is registered.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fleetota_core.adapters.clients import client_factory
from fleetota_core.adapters.resources import resolve_resources
from fleetota_core.adapters.vehicle_registry import VehicleRegistry
from fleetota_core.domain.vehicle_identity import REQUIRED_COLUMNS, vehicle_from_row
from fleetota_core.errors import InputError

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

    from fleetota_core.domain.vehicle_identity import RegisteredVehicle
    from fleetota_core.settings import Settings

MAX_FLEET_CSV_BYTES = 256 * 1024 * 1024  # about a million vehicles with PEM keys


def read_fleet_csv(path: Path, now: datetime) -> list[RegisteredVehicle]:
    """The vehicles of a fleet CSV (header row first); raises ``InputError`` at the first bad row."""
    try:
        if path.stat().st_size > MAX_FLEET_CSV_BYTES:
            raise InputError(f"fleet CSV {path} is larger than {MAX_FLEET_CSV_BYTES // 2**20} MiB")
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read fleet CSV {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"fleet CSV {path} is not UTF-8 text (offset {exc.start})") from exc
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputError(f"fleet CSV {path} lacks the column(s) {', '.join(missing)}")
    vehicles: list[RegisteredVehicle] = []
    seen: dict[str, int] = {}
    try:
        # Rows, not lines, are counted: a quoted PEM key spans several lines.
        for line, row in enumerate(reader, start=1):
            if None in row:
                raise InputError(f"fleet CSV {path} row {line}: more fields than the header names")
            cleaned = {(k or "").strip(): v for k, v in row.items()}
            try:
                vehicle = vehicle_from_row(cleaned, now)
            except InputError as exc:
                raise InputError(f"fleet CSV {path} row {line}: {exc}") from exc
            if vehicle.vin in seen:
                raise InputError(
                    f"fleet CSV {path} row {line}: VIN {vehicle.vin} repeats row {seen[vehicle.vin]}"
                )
            seen[vehicle.vin] = line
            vehicles.append(vehicle)
    except csv.Error as exc:
        raise InputError(f"fleet CSV {path} near line {reader.line_num}: {exc}") from exc
    if not vehicles:
        raise InputError(f"fleet CSV {path} has no vehicles")
    return vehicles


def provision_from_csv(args: argparse.Namespace, settings: Settings) -> int:
    if args.csv is None:
        raise InputError("vehicle provision: --csv FILE is required")
    vehicles = read_fleet_csv(args.csv, datetime.now(UTC))
    clients = client_factory(settings)
    resources = resolve_resources(settings, clients)
    written = VehicleRegistry.of_stack(clients.dynamodb, resources).put_many(vehicles)
    print(f"provisioned {written} vehicles in {resources.registry_table}")
    return 0
