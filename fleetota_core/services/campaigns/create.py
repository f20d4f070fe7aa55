"""Creating, listing and reading campaigns; targeting vehicles and splitting them into waves."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import yaml
from pydantic import ValidationError as PydanticValidationError

from fleetota_core.domain.campaign import Campaign, CampaignCounters, CampaignSpec, CampaignState, wave_sizes
from fleetota_core.domain.creation import NewDeployments
from fleetota_core.domain.deployment import DeploymentState
from fleetota_core.domain.enrolment import NOT_TARGETED, why_not_for
from fleetota_core.errors import InputError, ValidationError
from fleetota_core.services.campaigns.release_trust import check_artifact, check_release
from fleetota_core.services.campaigns.releases import get_release

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime

    from fleetota_core.domain.deployment import Deployment
    from fleetota_core.domain.enrolment import Candidate
    from fleetota_core.domain.firmware import FirmwareRelease
    from fleetota_core.domain.vehicle import Vehicle
    from fleetota_core.services.campaigns.ports import CampaignPorts


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """The fields of a JSON (``.json``) or YAML spec file; any file that is not one is an InputError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read campaign spec {path}: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"campaign spec {path} is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})"
        ) from exc
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except RecursionError as exc:
        raise InputError(f"campaign spec {path} is nested too deeply to be a campaign spec") from exc
    # ValueError: an integer literal longer than Python's int_max_str_digits (4,300 digits).
    except (json.JSONDecodeError, yaml.YAMLError, ValueError) as exc:
        raise InputError(f"campaign spec {path} is not valid JSON/YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise InputError(f"campaign spec {path} must be a mapping of fields, not {type(raw).__name__}")
    return raw


def merge_spec(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with ``overrides`` on top; nested mappings are merged, so ``--min-soc`` keeps the
    spec's other eligibility rules, and lists are replaced."""
    merged = dict(raw)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_spec(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_spec(raw: dict[str, Any]) -> CampaignSpec:
    try:
        return CampaignSpec.model_validate(raw)
    except PydanticValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in exc.errors())
        raise InputError(f"invalid campaign spec: {problems}") from exc


class _Targetable(Protocol):
    """What targeting reads of a vehicle: a ``Vehicle`` (preview) or a ``Candidate`` (creation)."""

    @property
    def vin(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def hw_rev(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def firmware_version(self) -> str: ...


T = TypeVar("T", bound=_Targetable)


@dataclass
class Targeting(Generic[T]):
    """The vehicles a spec reaches, and why the others it named were left out."""

    matched: list[T] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)


def _check_models(spec: CampaignSpec, release: FirmwareRelease) -> None:
    unknown = [m for m in spec.target.models if m not in release.manifest.models]
    if unknown:
        raise ValidationError(
            f"target model(s) {', '.join(unknown)} are not in release {release.version} "
            f"(it is for {', '.join(release.manifest.models)})"
        )


def _target(spec: CampaignSpec, release: FirmwareRelease, vehicles: Iterable[T]) -> Targeting[T]:
    result: Targeting[T] = Targeting()
    check = why_not_for(spec, release)
    for v in vehicles:
        why = check(v.vin, v.model, v.hw_rev, v.region, v.firmware_version)
        if why is None:
            result.matched.append(v)
        elif why != NOT_TARGETED:
            result.excluded[why] = result.excluded.get(why, 0) + 1
    return result


def target_vehicles(ports: CampaignPorts, spec: CampaignSpec, release: FirmwareRelease) -> Targeting[Vehicle]:
    """Vehicles matching the filter that can take ``release``, with their state (the preview judges it).

    Reads the whole fleet (the snapshot): fine for creation and preview, which are rare.
    """
    _check_models(spec, release)
    return _target(spec, release, ports.vehicles.all())


def target_candidates(
    ports: CampaignPorts, spec: CampaignSpec, release: FirmwareRelease
) -> Targeting[Candidate]:
    """The same vehicles as :func:`target_vehicles`, identity and version only (what creation needs)."""
    _check_models(spec, release)
    return _target(spec, release, ports.vehicles.candidates())


def _wave_order(campaign_id: str) -> Callable[[_Targetable], bytes]:
    """Deterministic shuffle: early waves are a spread of the fleet, not the oldest VINs.

    The key is sha256 of ``<campaign_id>:<vin>``; its digest sorts as its hex digest does (a million
    keys at creation: the prefix encoded once, no hex string made).
    """
    prefix = f"{campaign_id}:".encode()
    sha256 = hashlib.sha256

    def key(vehicle: _Targetable) -> bytes:
        return sha256(prefix + vehicle.vin.encode()).digest()

    return key


def create_campaign(
    spec: CampaignSpec, operator: str, ports: CampaignPorts, reason: str = "", now: datetime | None = None
) -> Campaign:
    """Target vehicles, write one PENDING deployment each and the waves' rosters, then the campaign.

    The release must verify with the image key, and its artifact have the signed size, first
    (:class:`IntegrityError` otherwise).
    """
    now = now or ports.clock.now()
    release = check_artifact(ports, check_release(ports, get_release(spec.release_version, ports)))
    # Before the targeting read: whatever changes from here on, enrolment reads in the change feed.
    watermark = ports.fleet_changes.start() if spec.continuous else ""
    targeting = target_candidates(ports, spec, release)
    # A continuous campaign may start empty: its vehicles join as they come (AWS IoT continuous jobs).
    if not targeting.matched and not spec.continuous:
        why = ", ".join(f"{n} {k}" for k, n in targeting.excluded.items()) or "no vehicle matches the filter"
        raise ValidationError(f"campaign {spec.name!r} targets no vehicle ({why})")
    campaign_id = f"c{now:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    vehicles = sorted(targeting.matched, key=_wave_order(campaign_id))
    sizes = wave_sizes(len(vehicles), spec.waves)
    wave_of = [w for w, size in enumerate(sizes) for _ in range(size)]
    ports.deployments.put_new(NewDeployments(campaign_id, spec.start_at or now, now, vehicles, wave_of))
    # Rosters in rollout order, before the campaign exists: no tick can look for them too early.
    first = 0
    for wave, size in enumerate(sizes):  # the waves are consecutive runs of ``vehicles``
        vins = [v.vin for v in vehicles[first : first + size]]
        first += size
        if vins:
            ports.schedule.put_roster(campaign_id, wave, vins)
    needs_approval = ports.approval.reason(spec.critical, len(vehicles))
    if needs_approval:
        state, state_reason = CampaignState.AWAITING_APPROVAL, f"awaiting a second operator: {needs_approval}"
    else:
        state = CampaignState.SCHEDULED
        state_reason = f"starts {spec.start_at.isoformat()}" if spec.start_at else "starts on the next tick"
    campaign = Campaign(
        campaign_id=campaign_id,
        spec=spec,
        release=release,
        state=state,
        state_reason=state_reason,
        wave_sizes=tuple(sizes),
        counters=CampaignCounters(
            states={DeploymentState.PENDING.value: len(vehicles)},
            wave_succeeded=[0] * len(sizes),
            wave_failed=[0] * len(sizes),
            wave_waiting=list(sizes),
        ),
        created_at=now,
        created_by=operator,
        updated_at=now,
        enrolment_watermark=watermark,
    )
    ports.campaigns.put_new(campaign)
    detail: dict[str, Any] = {
        "release": release.version,
        "vehicles": len(vehicles),
        "waves": sizes,
        "kind": spec.kind,
    }
    if spec.continuous:
        detail["continuous"] = True
    if needs_approval:
        detail["approval_required"] = needs_approval
    ports.audit.record(campaign_id, "CREATE", operator, reason, detail, now=now)
    return ports.campaign(campaign_id)


def list_campaigns(ports: CampaignPorts) -> list[Campaign]:
    """Every campaign, newest first."""
    return sorted(ports.campaigns.list_all(), key=lambda c: c.created_at, reverse=True)


def get_campaign(campaign_id: str, ports: CampaignPorts) -> Campaign:
    return ports.campaign(campaign_id)


def list_deployments(campaign_id: str, ports: CampaignPorts, limit: int | None = None) -> list[Deployment]:
    """The campaign's deployments (vin, state, wave, attempt, reason, error_code, ...)."""
    return ports.deployments.for_campaign(campaign_id, limit)


def campaign_history(campaign_id: str, ports: CampaignPorts) -> list[dict[str, Any]]:
    """The campaign's audit trail, newest first: who did what, when and why."""
    return ports.audit.history(campaign_id)
