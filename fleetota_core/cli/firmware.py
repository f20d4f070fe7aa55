"""``firmware publish|list``: signed firmware releases in the firmware bucket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetota_core.composition import ports_for
from fleetota_core.errors import ValidationError
from fleetota_core.services.campaigns.releases import list_releases
from fleetota_core.services.delta.publish import publish_with_deltas

if TYPE_CHECKING:
    import argparse

    from fleetota_core.settings import Settings


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def register(subparsers: Any) -> None:
    firmware = subparsers.add_parser("firmware", help="publish and list signed firmware releases")
    commands = firmware.add_subparsers(dest="firmware_command", metavar="ACTION", required=True)
    publish = commands.add_parser("publish", help="upload FILE, hash it, sign its manifest with KMS")
    publish.add_argument("file", type=Path, metavar="FILE")
    publish.add_argument("--version", required=True, help="semver, e.g. 2.4.0")
    publish.add_argument("--models", required=True, type=_csv, help="comma-separated compatible models")
    publish.add_argument("--hw-revs", type=_csv, default=[], help="comma-separated hardware revisions")
    publish.add_argument("--min-from-version", help="oldest version this release may be installed over")
    publish.add_argument(
        "--deltas-from",
        type=int,
        default=0,
        metavar="N",
        help="also make deltas from the N versions most vehicles of --models run (0-8, each published)",
    )
    publish.add_argument(
        "--delta-from",
        action="append",
        default=[],
        metavar="VERSION",
        help="also make a delta from this published version (repeatable)",
    )
    publish.add_argument("--notes", default="", help="release notes")
    publish.add_argument("--operator", help="who publishes (default FLEETOTA_OPERATOR)")
    publish.set_defaults(func=publish_command)
    listing = commands.add_parser("list", help="show the published releases, newest first")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=list_command)


def publish_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        body = args.file.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read firmware file {args.file}: {exc.strerror}") from exc
    release, plan = publish_with_deltas(
        body,
        args.version,
        args.models,
        args.hw_revs,
        args.min_from_version,
        args.notes,
        args.operator or settings.operator,
        ports_for(settings),
        filename=args.file.name,
        deltas_from=args.deltas_from,
        delta_from=args.delta_from,
    )
    m = release.manifest
    print(f"published {m.version}: {m.size_bytes} bytes, sha256 {m.sha256}, signed by {release.key_id}")
    for d in release.deltas:
        vehicles = plan.fleet_counts.get(d.source_version)
        on = f", {vehicles} vehicles on it" if vehicles is not None else ""
        print(
            f"  delta from {d.source_version}: {d.manifest.size_bytes} bytes "
            f"({m.size_bytes / d.manifest.size_bytes:.1f}x smaller{on}), sha256 {d.manifest.sha256}"
        )
    for version, why in plan.skipped.items():
        print(f"  no delta from {version}: {why}")
    return 0


def list_command(args: argparse.Namespace, settings: Settings) -> int:
    releases = list_releases(ports_for(settings))
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in releases], indent=2))
        return 0
    if not releases:
        print("no firmware published yet (`firmware publish FILE --version V --models M`)")
        return 0
    print(f"{'VERSION':<14} {'SIZE':>10}  {'MODELS':<40} {'HW':<12} {'DELTAS FROM':<18} {'CREATED':<20} BY")
    for r in releases:
        m = r.manifest
        print(
            f"{m.version:<14} {m.size_bytes:>10}  {', '.join(m.models)[:40]:<40} "
            f"{','.join(m.hw_revs) or 'all':<12} {','.join(d.source_version for d in r.deltas) or '-':<18} "
            f"{m.created_at:%Y-%m-%d %H:%M:%S}  {m.created_by}"
        )
    return 0
