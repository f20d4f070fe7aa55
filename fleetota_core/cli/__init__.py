"""``python -m fleetota_core`` / ``fleetota``: one argparse tree, one place that maps errors to a line.

Each command module exposes ``register(subparsers)``; its handlers take ``(args, settings)`` and
return an exit code.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from fleetota_core.cli import campaign, deploy, firmware, fleet, local, schema, telemetry
from fleetota_core.errors import FleetOTAError
from fleetota_core.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Sequence

# Each module adds its own sub-commands; listed here so `--help` shows them in a stable order.
COMMAND_MODULES = (local, schema, deploy, telemetry, fleet, firmware, campaign)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetota",
        description="FleetOTA: OTA update manager for vehicle fleets. Local mode by default "
        "(FLEETOTA_MODE=aws for a deployed stack).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
        return int(args.func(args, settings) or 0)
    except FleetOTAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except EndpointConnectionError as exc:
        print(
            f"error: cannot reach the AWS endpoint {exc.kwargs.get('endpoint_url', '')}; "
            "is the local stack running? (`python -m fleetota_core local up`)",
            file=sys.stderr,
        )
        return 1
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(f"error: AWS {error.get('Code', 'error')}: {error.get('Message', exc)}", file=sys.stderr)
        return 1
    except BotoCoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
