"""``python -m fleetota_core`` / ``fleetota``: one argparse tree, one place that maps errors to a line.

Each command module exposes ``register(subparsers)``; its handlers take ``(args, settings)`` and
return an exit code. Every failure is one ``error:`` line on stderr and an exit code: 2 when the input
cannot be used as given (an argument argparse refuses, an unreadable spec file, a spec or manifest
past a rule: :class:`InputError`), 1 for every other refusal or failure (a state that forbids the
action, a conflict, something missing, the backend), 130 on Ctrl-C. :func:`describe_failure` is
the one mapping.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, NoReturn

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from fleetota_core.cli import campaign, compliance, deploy, firmware, fleet, local, schema, telemetry
from fleetota_core.errors import FleetOTAError, InputError
from fleetota_core.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Sequence

# Each module adds its own sub-commands; listed here so `--help` shows them in a stable order.
COMMAND_MODULES = (local, schema, deploy, telemetry, fleet, firmware, campaign, compliance)

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2  # argparse's own code for a usage error
EXIT_INTERRUPTED = 130


class ArgumentError(InputError):
    """An argument argparse refused; the message names the command and the argument."""


class CommandLineParser(argparse.ArgumentParser):
    """Raises instead of printing the usage and exiting, so :func:`main` reports it as one line.

    Sub-command parsers are made with the parser's own class, so every level behaves the same.
    """

    def error(self, message: str) -> NoReturn:
        raise ArgumentError(f"{self.prog}: {message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(
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
    try:
        args = parser.parse_args(argv)
        settings = Settings()
        return int(args.func(args, settings) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (FleetOTAError, BotoCoreError, ClientError) as exc:
        message, code = describe_failure(exc)
        print(f"error: {message}", file=sys.stderr)
        return code


def describe_failure(exc: FleetOTAError | BotoCoreError | ClientError) -> tuple[str, int]:
    """The one line (without ``error:``) and the exit code for a failure: the CLI's only mapping."""
    if isinstance(exc, InputError):
        return _one_line(str(exc)), EXIT_BAD_INPUT
    if isinstance(exc, FleetOTAError):
        return _one_line(str(exc)), EXIT_FAILURE
    if isinstance(exc, EndpointConnectionError):
        endpoint = exc.kwargs.get("endpoint_url", "")
        return (
            f"cannot reach the AWS endpoint {endpoint}; is the local stack running? "
            "(`python -m fleetota_core local up`)",
            EXIT_FAILURE,
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return _one_line(f"AWS {error.get('Code', 'error')}: {error.get('Message', exc)}"), EXIT_FAILURE
    return _one_line(str(exc)), EXIT_FAILURE


def _one_line(message: str) -> str:
    """Messages can quote input (a YAML error's excerpt, a pydantic list of problems): keep one line."""
    return " ".join(message.split())
