"""``fleetota fleet`` (the fleet summary), ``fleetota vehicle VIN`` (one vehicle's latest state) and
``fleetota vehicle provision --csv FILE`` (import a fleet into the registry)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from fleetota_core.adapters.clients import client_factory
from fleetota_core.adapters.resources import resolve_resources
from fleetota_core.adapters.vehicle_state import DynamoVehicleStates
from fleetota_core.cli.vehicle_registry import provision_from_csv
from fleetota_core.domain.vin import InvalidVINError, validate_vin
from fleetota_core.errors import InputError, ResourceNotFoundError, ValidationError
from fleetota_core.services.ingest.fleet_health import FleetHealth, current_fleet_health

if TYPE_CHECKING:
    import argparse

    from fleetota_core.settings import Settings

PROVISION = "provision"  # not a VIN (too short), so `vehicle provision` cannot shadow one


def register(subparsers: argparse._SubParsersAction) -> None:
    fleet = subparsers.add_parser("fleet", help="fleet summary: vehicles, online, battery average, versions")
    fleet.add_argument("--json", action="store_true", help="print JSON instead of a table")
    fleet.add_argument("--live", action="store_true", help="scan the vehicles table, not the snapshot")
    fleet.set_defaults(func=_fleet)
    vehicle = subparsers.add_parser(
        "vehicle", help="one vehicle's latest state, or `vehicle provision --csv FILE` to import a fleet"
    )
    vehicle.add_argument("vin", help="a VIN, or `provision` to register the vehicles of --csv")
    vehicle.add_argument(
        "--csv",
        type=Path,
        help="with `provision`: a CSV with the columns vin, make, model, model_year, hw_rev, region, "
        "public_key (PEM or uncompressed P-256 point in hex), optionally status and provisioned_at",
    )
    vehicle.add_argument("--json", action="store_true", help="print JSON instead of a table")
    vehicle.set_defaults(func=_vehicle)


def render_fleet(health: FleetHealth) -> str:
    lines = [
        f"vehicles          {health.vehicles}",
        f"online            {health.online} ({health.connectivity_pct if health.vehicles else 0} %)",
        f"battery average   {health.battery_average if health.battery_average is not None else '-'} %",
        f"needs update      {health.needs_update}",
        f"as of             {health.as_of} (from the {health.source})",
        "versions",
        *(f"  {version:<16}{count}" for version, count in health.versions.items()),
    ]
    return "\n".join(lines)


def _fleet(args: argparse.Namespace, settings: Settings) -> int:
    clients = client_factory(settings)
    health = current_fleet_health(clients, resolve_resources(settings, clients), live=args.live)
    print(json.dumps(health.as_dict(), indent=2) if args.json else render_fleet(health))
    return 0


def _vehicle(args: argparse.Namespace, settings: Settings) -> int:
    if args.vin == PROVISION:
        return provision_from_csv(args, settings)
    if args.csv is not None:
        raise InputError("--csv is only for `fleetota vehicle provision --csv FILE`")
    vin = args.vin.strip().upper()
    try:
        validate_vin(vin)
    except InvalidVINError as exc:
        raise ValidationError(f"{vin!r} is not a valid VIN: {exc}") from exc
    clients = client_factory(settings)
    resources = resolve_resources(settings, clients)
    state = DynamoVehicleStates(clients.dynamodb, resources.vehicles_table).get(vin)
    if state is None:
        raise ResourceNotFoundError(f"vehicle {vin} has never sent telemetry to {resources.vehicles_table}")
    if args.json:
        print(json.dumps(state, indent=2, sort_keys=True))
    else:
        width = max(map(len, state))
        print("\n".join(f"{name:<{width}}  {state[name]}" for name in sorted(state)))
    return 0
