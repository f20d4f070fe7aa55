"""The ``campaign create|preview`` delivery flags (install and network policy) and their output."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fleetota_core.domain.delivery import DownloadNetworks, InstallPolicy

if TYPE_CHECKING:
    from fleetota_core.services.campaigns.preview_delivery import DeliveryForecast


def iso_datetime(value: str) -> datetime:
    """An ISO 8601 time flag; argparse turns the error into its exit-2 refusal."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 time, e.g. 2026-12-01T02:00:00+01:00"
        ) from None


def add_delivery_flags(parser: argparse.ArgumentParser) -> None:
    """Bounds are the spec's (domain/delivery.py): a value outside them is refused with exit 2."""
    group = parser.add_argument_group("delivery (docs/campaigns.md, Install and network policy)")
    group.add_argument(
        "--install-policy",
        choices=[p.value for p in InstallPolicy],
        help="immediate (default); window: download now, install in a maintenance window; "
        "consent: the driver accepts, else the window rule after --consent-deadline",
    )
    group.add_argument("--consent-deadline", type=int, help="seconds the driver has to accept (consent)")
    group.add_argument(
        "--download-networks", choices=[n.value for n in DownloadNetworks], help="any (default) or wifi"
    )
    group.add_argument("--cellular-after", type=iso_datetime, help="wifi: cellular allowed from this time")
    group.add_argument("--cellular-max-mb", type=float, help="wifi: cellular allowed up to this size")
    group.add_argument("--cellular-budget-gb", type=float, help="cellular data budget for the campaign")
    group.add_argument("--cellular-cost-per-gb", type=float, help="cost of one GB of cellular data")


def delivery_section(args: argparse.Namespace) -> dict[str, Any]:
    """The spec's ``delivery`` section from the flags given (None means not given)."""
    values = {
        "install": args.install_policy,
        "consent_deadline_s": args.consent_deadline,
        "download_networks": args.download_networks,
        "cellular_after": args.cellular_after,
        "cellular_max_mb": args.cellular_max_mb,
        "cellular_budget_gb": args.cellular_budget_gb,
        "cellular_cost_per_gb": args.cellular_cost_per_gb,
    }
    return {key: value for key, value in values.items() if value is not None}


def print_forecast(forecast: DeliveryForecast | None) -> None:
    if forecast is None:
        return
    print(f"install policy   : {forecast.install_policy}")
    for phase in forecast.phases:
        hours = phase["after_s"] / 3600
        print(f"  {phase['phase']:<8} done by {phase['expected_done'][:16]} ({hours:.1f} h)")
    print(
        f"cellular data    : {forecast.projected_cellular_bytes / 1e9:.3f} GB, cost "
        f"{forecast.projected_cellular_cost:.2f} ({forecast.cellular_vehicles_now} vehicles on cellular "
        f"now; Wi-Fi {forecast.projected_wifi_bytes / 1e9:.3f} GB)"
    )


def delivery_line(summary: dict[str, Any]) -> str:
    return (
        f"delivery  : install {summary['install_policy']}, downloads over {summary['download_networks']}; "
        f"{summary['staged']} staged; Wi-Fi {summary['bytes_wifi'] / 1e6:.1f} MB, "
        f"cellular {summary['bytes_cellular'] / 1e6:.1f} MB"
    )
