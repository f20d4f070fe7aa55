"""``fleetota telemetry stats``: the pipeline's accounting (received = stored + quarantined)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fleetota_core.adapters.clients import client_factory
from fleetota_core.adapters.resources import resolve_resources
from fleetota_core.services.ingest.stats import telemetry_stats

if TYPE_CHECKING:
    import argparse

    from fleetota_core.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("telemetry", help="telemetry pipeline accounting")
    commands = parser.add_subparsers(dest="telemetry_command", metavar="COMMAND", required=True)
    stats = commands.add_parser("stats", help="received, stored, quarantined (by reason), duplicates, DLQ")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(func=_stats)


def render_stats(stats: dict[str, Any]) -> str:
    rows = [
        ("received", stats["received"]),
        ("stored", stats["stored"]),
        ("quarantined", stats["quarantined"]),
        *((f"  {reason}", n) for reason, n in stats["quarantined_by_reason"].items()),
        ("duplicate objects", stats["duplicates"]["objects"]),
        ("duplicate records", stats["duplicates"]["records"]),
        ("objects", stats["objects"]),
        ("objects quarantined", stats["objects_quarantined"]),
        *((f"  {reason}", n) for reason, n in stats["objects_quarantined_by_reason"].items()),
        ("dead-lettered messages", stats["dlq"]),
        ("vehicle state writes", stats["vehicle_writes"]),
        ("writes skipped (immaterial)", stats["vehicle_writes_skipped"]),
        ("writes deferred (flagged changes over the bound)", stats["vehicle_writes_deferred"]),
        ("decided without reading the state", stats["vehicle_state_reads_avoided"]),
        ("lag p50 / p95 (ms)", f"{stats['lag_ms']['p50']} / {stats['lag_ms']['p95']}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    clients = client_factory(settings)
    stats = telemetry_stats(clients, resolve_resources(settings, clients))
    print(json.dumps(stats, indent=2) if args.json else render_stats(stats))
    return 0
