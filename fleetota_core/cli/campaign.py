"""``campaign create|preview|list|show|approve|reject|pause|resume|abort|retry-failed|rollback|recount|
finish``."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from fleetota_core.cli.campaign_delivery import (
    add_delivery_flags,
    delivery_line,
    delivery_section,
    iso_datetime,
    print_forecast,
)
from fleetota_core.composition import ports_for
from fleetota_core.domain.campaign import CampaignSpec, CampaignState
from fleetota_core.domain.deployment import DeploymentState
from fleetota_core.domain.vehicle_health import SIGNALS
from fleetota_core.errors import InputError
from fleetota_core.services.campaigns import actions
from fleetota_core.services.campaigns.create import (
    campaign_history,
    create_campaign,
    get_campaign,
    list_campaigns,
    list_deployments,
    merge_spec,
    parse_spec,
    read_spec_file,
)
from fleetota_core.services.campaigns.preview import preview_campaign

if TYPE_CHECKING:
    from collections.abc import Callable

    from fleetota_core.settings import Settings

ACTIONS = {
    "approve": actions.approve_campaign,
    "reject": actions.reject_campaign,
    "pause": actions.pause_campaign,
    "resume": actions.resume_campaign,
    "abort": actions.abort_campaign,
    "retry-failed": actions.retry_failed,
    "rollback": actions.rollback_campaign,
    "recount": actions.recount_campaign,
    "finish": actions.finish_campaign,
}


def _csv(value: str) -> list[str]:
    """A comma-separated list; an empty one is refused rather than read as "no filter"."""
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"{value!r} names nothing; give comma-separated values")
    return parts


def _csv_of(kind: type[int] | type[float], what: str) -> Callable[[str], list[Any]]:
    def parse(value: str) -> list[Any]:
        numbers = []
        for part in _csv(value):
            try:
                numbers.append(kind(part))
            except ValueError:
                raise argparse.ArgumentTypeError(f"{part!r} is not {what}") from None
        return numbers

    return parse


def _spec_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", help="JSON or YAML spec file (docs/campaigns.md); flags override it")
    parser.add_argument("--name")
    parser.add_argument("--release", dest="release_version", help="firmware version to roll out")
    for flag in ("models", "hw-revs", "regions", "versions", "vins"):
        parser.add_argument(f"--{flag}", type=_csv, help=f"target {flag.replace('-', ' ')}, comma-separated")
    waves = parser.add_mutually_exclusive_group()
    waves.add_argument("--waves", type=_csv_of(float, "a percentage"), help="wave percentages, e.g. 5,25,70")
    waves.add_argument(
        "--wave-sizes", type=_csv_of(int, "a whole number"), help="wave sizes in vehicles, e.g. 10,100,1000"
    )
    every_wave = "applies to every wave: --waves/--wave-sizes, else the spec's, else the single default wave"
    parser.add_argument(
        "--success-threshold", type=float, help=f"per-wave success %% to open the next; {every_wave}"
    )
    parser.add_argument("--error-threshold", type=float, help=f"per-wave error %% that pauses; {every_wave}")
    parser.add_argument("--abort-failure-pct", type=float)
    parser.add_argument("--abort-min-executed", type=int)
    parser.add_argument("--max-in-flight", type=int)
    parser.add_argument("--timeout", type=int, dest="in_progress_timeout_s", help="in-progress timeout, s")
    parser.add_argument("--max-attempts", type=int)
    parser.add_argument("--backoff", type=float, help="first retry backoff in seconds (doubles)")
    parser.add_argument("--min-soc", type=float, help="minimum state of charge %% (charging overrides)")
    parser.add_argument("--networks", type=_csv, help="allowed networks, e.g. WIFI,5G,LTE")
    parser.add_argument("--min-signal", type=int, help="minimum signal in dBm")
    parser.add_argument("--window", action="append", help="maintenance window HH:MM-HH:MM local time")
    parser.add_argument("--start-at", type=iso_datetime, help="scheduled start, ISO 8601 with offset")
    add_delivery_flags(parser)
    parser.add_argument(
        "--soak-minutes",
        type=float,
        help="health gate: after each wave, compare its updated vehicles with not-updated ones of the "
        "same model and region for this long before the next wave opens (docs/campaigns.md)",
    )
    parser.add_argument(
        "--critical",
        action="store_true",
        default=None,
        help="wait for a second operator's approval before any vehicle is notified (four-eyes)",
    )
    parser.add_argument(
        "--continuous",
        action="store_true",
        default=None,
        help="vehicles that match later (newly provisioned, or on the source version) join the open "
        "wave until `campaign finish`",
    )


def _given(values: dict[str, Any]) -> dict[str, Any]:
    """The flags the operator gave: None means not given; 0, "" and False are values to honour."""
    return {key: value for key, value in values.items() if value is not None}


def _spec_from_args(args: argparse.Namespace) -> Any:
    raw = _given(
        {
            "name": args.name,
            "release_version": args.release_version,
            "max_in_flight": args.max_in_flight,
            "in_progress_timeout_s": args.in_progress_timeout_s,
            "start_at": args.start_at,
            "critical": args.critical,
            "continuous": args.continuous,
            "soak_minutes": args.soak_minutes,
        }
    )
    sections = {
        "target": _given(
            {
                "models": args.models,
                "hw_revs": args.hw_revs,
                "regions": args.regions,
                "current_versions": args.versions,
                "vins": args.vins,
            }
        ),
        "abort": _given({"failure_pct": args.abort_failure_pct, "min_executed": args.abort_min_executed}),
        "retry": _given({"max_attempts": args.max_attempts, "backoff_base_s": args.backoff}),
        "delivery": delivery_section(args),
        "eligibility": _given(
            {
                "min_soc_pct": args.min_soc,
                "networks": args.networks,
                "min_signal_dbm": args.min_signal,
                "maintenance_windows": None if args.window is None else [_window(w) for w in args.window],
            }
        ),
    }
    raw.update({key: section for key, section in sections.items() if section})
    if args.waves is not None:
        raw["waves"] = [{"percent": p} for p in args.waves]
    elif args.wave_sizes is not None:
        raw["waves"] = [{"size": n} for n in args.wave_sizes]
    if args.spec:
        raw = merge_spec(read_spec_file(args.spec), raw)
    elif "name" not in raw or "release_version" not in raw:
        raise InputError("give --spec FILE, or at least --name and --release")
    thresholds = _given(
        {"success_threshold_pct": args.success_threshold, "error_threshold_pct": args.error_threshold}
    )
    if thresholds:
        raw["waves"] = _with_thresholds(raw.get("waves"), thresholds)
    return parse_spec(raw)


def _with_thresholds(waves: Any, thresholds: dict[str, float]) -> Any:
    """Every wave with the threshold flags on top: the flags' waves, the spec's or the default one."""
    if waves is None:
        waves = [wave.model_dump(exclude_none=True) for wave in CampaignSpec.model_fields["waves"].default]
    if not isinstance(waves, list | tuple):
        return waves  # not a list of waves: the spec's validation says so
    return [{**wave, **thresholds} if isinstance(wave, dict) else wave for wave in waves]


def _window(text: str) -> dict[str, str]:
    start, sep, end = text.partition("-")
    if not sep:
        raise InputError(f"maintenance window {text!r} must look like 22:00-04:00")
    return {"start": start, "end": end}


def register(subparsers: Any) -> None:
    campaign = subparsers.add_parser("campaign", help="create and steer OTA campaigns")
    commands = campaign.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)
    create = commands.add_parser("create", help="create a campaign from flags or a spec file")
    _spec_flags(create)
    create.add_argument("--reason", default="", help="why (recorded in the audit trail)")
    create.add_argument("--operator", help="who (default FLEETOTA_OPERATOR)")
    create.set_defaults(func=create_command)
    preview = commands.add_parser("preview", help="show matched and eligible vehicles, waves, volume")
    _spec_flags(preview)
    preview.add_argument("--json", action="store_true")
    preview.set_defaults(func=preview_command)
    listing = commands.add_parser("list", help="all campaigns, newest first")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=list_command)
    show = commands.add_parser("show", help="one campaign: progress, waves, deployments, audit")
    show.add_argument("campaign_id", metavar="ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=show_command)
    for name in ACTIONS:
        action = commands.add_parser(name, help=f"{name} a campaign (audited)")
        action.add_argument("campaign_id", metavar="ID")
        action.add_argument("--reason", default="", help="why (recorded in the audit trail)")
        action.add_argument("--operator", help="who (default FLEETOTA_OPERATOR)")
        action.set_defaults(func=action_command, action=name)


def create_command(args: argparse.Namespace, settings: Settings) -> int:
    spec = _spec_from_args(args)
    campaign = create_campaign(spec, args.operator or settings.operator, ports_for(settings), args.reason)
    print(
        f"created {campaign.campaign_id}: {campaign.total} vehicles in waves {list(campaign.sizes)}, "
        f"{campaign.state.value}"
    )
    if campaign.spec.continuous:
        print(
            "continuous: vehicles that match later join its open wave until "
            f"`fleetota campaign finish {campaign.campaign_id} --reason WHY`"
        )
    if campaign.state is CampaignState.AWAITING_APPROVAL:
        print(
            f"{campaign.state_reason}; another operator approves it with "
            f"`fleetota campaign approve {campaign.campaign_id} --operator NAME --reason WHY`"
        )
    return 0


def preview_command(args: argparse.Namespace, settings: Settings) -> int:
    spec = _spec_from_args(args)
    preview = preview_campaign(spec, ports_for(settings))
    if args.json:
        print(json.dumps(preview.as_dict(), indent=2))
        return 0
    print(f"matched vehicles : {preview.matched}")
    print(f"eligible now     : {preview.eligible_now}")
    for reason, count in preview.deferred_reasons.items():
        print(f"  deferred ({reason}): {count}")
    for reason, count in preview.excluded.items():
        print(f"excluded ({reason}): {count}")
    print(f"wave sizes       : {preview.wave_sizes}")
    print(f"download volume  : {preview.download_bytes / 1e6:.1f} MB")
    if preview.delta_vehicles:
        print(
            f"  with deltas    : {preview.delta_vehicles} vehicles; saves {preview.bytes_saved / 1e6:.1f} MB "
            f"of {preview.full_image_bytes / 1e6:.1f} MB as full images ({preview.saved_pct:.0f} %)"
        )
    print(f"estimated time   : {preview.estimated_duration_s / 3600:.1f} h ({preview.assumptions})")
    print_forecast(preview.delivery)
    return 0


def list_command(args: argparse.Namespace, settings: Settings) -> int:
    rows = [c.summary() for c in list_campaigns(ports_for(settings))]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no campaigns yet (`campaign create --spec FILE`)")
        return 0
    width = max(len("STATE"), *(len(r["state"]) for r in rows))  # AWAITING_APPROVAL is 17 wide
    print(
        f"{'ID':<20} {'STATE':<{width}} {'RELEASE':<10} {'WAVE':<6} {'TOTAL':>6} {'OK':>6} {'FAIL':>5} "
        f"{'FLIGHT':>6} NAME"
    )
    for r in rows:
        print(
            f"{r['campaign_id']:<20} {r['state']:<{width}} {r['release']:<10} {r['wave']:<6} {r['total']:>6} "
            f"{r['succeeded']:>6} {r['failed']:>5} {r['in_flight']:>6} {r['name']}"
        )
    return 0


def show_command(args: argparse.Namespace, settings: Settings) -> int:
    ports = ports_for(settings)
    campaign = get_campaign(args.campaign_id, ports)
    deployments = list_deployments(args.campaign_id, ports, limit=1000)
    history = campaign_history(args.campaign_id, ports)
    if args.json:
        payload = {
            **campaign.summary(),
            "spec": campaign.spec.model_dump(mode="json"),
            "wave_sizes": list(campaign.sizes),
            "states": {k: v for k, v in campaign.counters.states.items() if v},
            "deployments": [{**asdict(d), "deployment_id": d.deployment_id} for d in deployments],
            "audit": history,
            "health_gate": None if campaign.gate is None else campaign.gate.model_dump(mode="json"),
        }
        print(json.dumps(payload, indent=2, default=str))
        return 0
    s = campaign.summary()
    print(f"{s['campaign_id']}  {s['name']}  ({s['kind']} to {s['release']})")
    print(f"state     : {s['state']}  {s['state_reason']}")
    print(f"wave      : {s['wave']}  sizes {list(campaign.sizes)}")
    if campaign.spec.continuous:
        taking = "taking vehicles" if s["enrolling"] else "finished: takes no more vehicles"
        print(f"continuous: {taking}; {s['joined_later']} joined after creation")
    print("states    : " + ", ".join(f"{k} {v}" for k, v in campaign.counters.states.items() if v))
    print(f"success   : {s['success_rate']}%" if s["success_rate"] is not None else "success   : -")
    print(delivery_line(s))
    for line in _gate_lines(campaign):
        print(line)
    deferred = [d for d in deployments if d.state is DeploymentState.DEFERRED][:10]
    for d in deferred:
        print(f"  deferred {d.vin}: {d.reason or ''}")
    print("audit     :")
    for h in history[:20]:
        print(f"  {h['event_ts'][:19]}  {h['action']:<14} {h['operator']:<24} {h.get('reason', '')}")
    return 0


def _gate_lines(campaign: Any) -> list[str]:
    """The health gate's verdict and, per signal, canary vs control."""
    gate = campaign.gate
    if campaign.spec.soak_minutes is None:
        return []
    if gate is None:
        return [f"gate      : soak {campaign.spec.soak_minutes:g} min after each wave; no wave soaked yet"]
    lines = [f"gate      : {gate.summary()}"]
    lines.append(
        f"  soak {gate.soak_started_at:%Y-%m-%d %H:%M} - {gate.soak_ends_at:%H:%M} UTC, "
        f"{gate.canary_vehicles} canary vs {gate.control_vehicles} control vehicles"
    )
    for m in gate.metrics:
        info = SIGNALS[m.signal]
        if m.canary_mean is None or m.control_mean is None:
            lines.append(f"  {info.label:<22} {m.verdict.value:<6} n={m.canary_n}/{m.control_n}")
            continue
        lines.append(
            f"  {info.label:<22} {m.verdict.value:<6} canary {m.canary_mean:.2f} vs control "
            f"{m.control_mean:.2f} {info.unit}, p={m.p_value:.3g}"
        )
    return lines


def action_command(args: argparse.Namespace, settings: Settings) -> int:
    operator = args.operator or settings.operator
    campaign = ACTIONS[args.action](args.campaign_id, operator, args.reason, ports_for(settings))
    if args.action == "rollback":
        print(
            f"created rollback campaign {campaign.campaign_id} to {campaign.release.version} "
            f"for {campaign.total} vehicles"
        )
    else:
        print(f"{campaign.campaign_id}: {campaign.state.value}")
    return 0
