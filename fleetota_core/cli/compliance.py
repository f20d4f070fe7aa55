"""``compliance vin VIN|release VERSION``: software evidence per vehicle and per release (UN R156)."""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fleetota_core.composition import ports_for
from fleetota_core.services.campaigns.compliance import (
    HISTORY_COLUMNS,
    RELEASE_COLUMNS,
    RELEASE_STATUSES,
    history_rows,
    release_report,
    vin_history,
)

if TYPE_CHECKING:
    from fleetota_core.settings import Settings

FORMATS = ("table", "csv", "json")


def _aware(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 time, e.g. 2026-03-01T00:00:00Z"
        ) from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no UTC offset; add Z or +01:00")
    return when


def register(subparsers: Any) -> None:
    compliance = subparsers.add_parser("compliance", help="software evidence per vehicle or per release")
    commands = compliance.add_subparsers(dest="compliance_command", metavar="WHAT", required=True)
    vin = commands.add_parser("vin", help="every version a vehicle ran, from when to when, and every attempt")
    vin.add_argument("vin", metavar="VIN")
    vin.add_argument("--at", type=_aware, help="also say which version it ran at this time (ISO 8601)")
    vin.add_argument("--format", choices=FORMATS, default="table")
    vin.set_defaults(func=vin_command)
    release = commands.add_parser(
        "release", help="which vehicles run a release, since when, which still wait"
    )
    release.add_argument("version", metavar="VERSION")
    release.add_argument("--format", choices=FORMATS, default="table")
    release.set_defaults(func=release_command)


def vin_command(args: argparse.Namespace, settings: Settings) -> int:
    history = vin_history(args.vin, ports_for(settings))
    rows = history_rows(history)
    at = history.running_at(args.at) if args.at else None
    if args.format == "json":
        document: dict[str, Any] = {"vin": history.vin, "history": rows}
        if args.at:
            document["at"] = {"time": args.at.isoformat(), "running": at.as_row() if at else None}
        print(json.dumps(document, indent=2))
        return 0
    if args.format == "csv":
        print(_csv(rows, HISTORY_COLUMNS), end="")
        return 0
    _table(rows, ("kind", "version", "since", "until", "result", "error_code", "campaign_id", "approved_by"))
    if args.at:
        print(f"\nat {args.at.isoformat()}: " + (f"{at.version} ({at.evidence})" if at else "no record"))
    return 0


def release_command(args: argparse.Namespace, settings: Settings) -> int:
    rows = [r.as_row() for r in release_report(args.version, ports_for(settings))]
    if args.format == "json":
        print(json.dumps({"release": args.version, "vehicles": rows}, indent=2))
    elif args.format == "csv":
        print(_csv(rows, RELEASE_COLUMNS), end="")
    else:
        _table(rows, RELEASE_COLUMNS)
        counts = {s: sum(r["status"] == s for r in rows) for s in RELEASE_STATUSES}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        print("\n" + (summary or f"no vehicle runs or awaits {args.version}"))
    return 0


def _csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
