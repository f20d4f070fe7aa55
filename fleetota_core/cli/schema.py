"""``fleetota schema``: print the published JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from fleetota_core.domain.telemetry import telemetry_json_schema

if TYPE_CHECKING:
    import argparse

    from fleetota_core.settings import Settings

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "telemetry.schema.json"


def render_telemetry_schema() -> str:
    return json.dumps(telemetry_json_schema(), indent=2, sort_keys=True) + "\n"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("schema", help="print or write the telemetry record JSON Schema")
    parser.add_argument(
        "--write", action="store_true", help=f"write it to {SCHEMA_PATH.relative_to(SCHEMA_PATH.parents[1])}"
    )
    parser.set_defaults(func=_schema)


def _schema(args: argparse.Namespace, settings: Settings) -> int:
    text = render_telemetry_schema()
    if args.write:
        SCHEMA_PATH.write_text(text)
        print(f"wrote {SCHEMA_PATH}")
    else:
        print(text, end="")
    return 0
