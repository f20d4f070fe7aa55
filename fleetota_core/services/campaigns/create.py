"""Creating, listing and reading campaigns; targeting vehicles and splitting them into waves."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from fleetota_core.adapters.deployment_store import bucket
from fleetota_core.adapters.dynamo_items import sortable_ts
from fleetota_core.domain.campaign import CampaignSpec, CampaignState, wave_sizes
from fleetota_core.domain.deployment import DeploymentState, deployment_id
from fleetota_core.domain.firmware import SemVer
from fleetota_core.errors import ResourceNotFoundError, ValidationError
from fleetota_core.services.campaigns.backend import Campaign, OtaBackend, ota_backend, spec_json

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources
    from fleetota_core.domain.firmware import FirmwareRelease


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None) -> CampaignSpec:
    """A campaign spec from a JSON or YAML file (see docs/campaigns.md), with CLI overrides on top."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationError(f"cannot read campaign spec {path}: {exc.strerror}") from exc
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValidationError(f"campaign spec {path} is not valid JSON/YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValidationError(f"campaign spec {path} must be a mapping of fields")
    return parse_spec({**raw, **(overrides or {})})


def parse_spec(raw: dict[str, Any]) -> CampaignSpec:
    try:
        return CampaignSpec.model_validate(raw)
    except PydanticValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in exc.errors())
        raise ValidationError(f"invalid campaign spec: {problems}") from exc


@dataclass
class Targeting:
    """The vehicles a spec reaches, and why the others it named were left out."""

    matched: list[dict[str, Any]] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)


def published_release(backend: OtaBackend, version: str) -> FirmwareRelease:
    """The release a campaign spec names; a clear error when it was never published."""
    release = backend.firmware.get_release(version)
    if release is None:
        raise ResourceNotFoundError(f"firmware {version} is not published (see `firmware list`)")
    return release


def target_vehicles(backend: OtaBackend, spec: CampaignSpec, release: FirmwareRelease) -> Targeting:
    """Vehicles matching the filter that can take ``release``.

    Reads the whole vehicles table (a scan): fine for creation and preview, which are rare.
    """
    unknown = [m for m in spec.target.models if m not in release.manifest.models]
    if unknown:
        raise ValidationError(
            f"target model(s) {', '.join(unknown)} are not in release {release.version} "
            f"(it is for {', '.join(release.manifest.models)})"
        )
    result = Targeting()
    target, manifest = spec.target, release.manifest
    wanted = SemVer(release.version)

    def exclude(why: str) -> None:
        result.excluded[why] = result.excluded.get(why, 0) + 1

    for v in backend.vehicles.scan_all():
        fields = (v.get("vin", ""), v.get("model", ""), v.get("hw_rev", ""), v.get("region", "unknown"))
        version = v.get("firmware_version", "0.0.0")
        if not target.matches(*fields, version):
            continue
        if not manifest.is_compatible(v.get("model", ""), v.get("hw_rev", "")):
            exclude("incompatible model or hardware revision")
            continue
        current = SemVer(version)
        if current == wanted:
            exclude(f"already on {release.version}")
        elif spec.kind == "update" and current > wanted:
            exclude(f"newer than {release.version}")
        elif spec.kind == "update" and not manifest.accepts_source(version):
            exclude(f"below minimum source version {manifest.min_from_version}")
        else:
            result.matched.append(v)
    return result


def _wave_order(campaign_id: str, vin: str) -> str:
    # Deterministic shuffle: early waves are a spread of the fleet, not the oldest VINs.
    return hashlib.sha256(f"{campaign_id}:{vin}".encode()).hexdigest()


def create_campaign(
    spec: CampaignSpec,
    operator: str,
    clients: ClientFactory,
    resources: Resources,
    reason: str = "",
    now: datetime | None = None,
) -> Campaign:
    """Target vehicles, write one PENDING deployment each, then the SCHEDULED campaign item."""
    now = now or datetime.now(UTC)
    backend = ota_backend(clients, resources)
    release = published_release(backend, spec.release_version)
    targeting = target_vehicles(backend, spec, release)
    if not targeting.matched:
        why = ", ".join(f"{n} {k}" for k, n in targeting.excluded.items()) or "no vehicle matches the filter"
        raise ValidationError(f"campaign {spec.name!r} targets no vehicle ({why})")
    campaign_id = f"c{now:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    vehicles = sorted(targeting.matched, key=lambda v: _wave_order(campaign_id, v["vin"]))
    sizes = wave_sizes(len(vehicles), spec.waves)
    start = sortable_ts(spec.start_at or now)
    wave_of = [w for w, size in enumerate(sizes) for _ in range(size)]
    backend.deployments.put_many(
        {
            "campaign_id": campaign_id,
            "vin": v["vin"],
            "deployment_id": deployment_id(campaign_id, v["vin"]),
            "state": DeploymentState.PENDING.value,
            "campaign_status": bucket(campaign_id, DeploymentState.PENDING, wave),
            "next_action_at": start,
            "wave": wave,
            "attempt": 0,
            "version": 0,
            "model": v.get("model"),
            "hw_rev": v.get("hw_rev"),
            "from_version": v.get("firmware_version"),
            "created_at": sortable_ts(now),
        }
        for v, wave in zip(vehicles, wave_of, strict=True)
    )
    item: dict[str, Any] = {
        "campaign_id": campaign_id,
        "name": spec.name,
        "spec": spec_json(spec),
        "release": release.model_dump_json(),
        "state": CampaignState.SCHEDULED.value,
        "state_reason": f"starts {spec.start_at.isoformat()}" if spec.start_at else "starts on the next tick",
        "current_wave": 0,
        "wave_sizes": sizes,
        "acknowledged_failures": 0,
        "version": 0,
        "created_at": now.isoformat(),
        "created_by": operator,
        "updated_at": now.isoformat(),
        "in_flight": 0,
        f"n_{DeploymentState.PENDING.value}": len(vehicles),
        **{f"w{i}_ok": 0 for i in range(len(sizes))},
        **{f"w{i}_fail": 0 for i in range(len(sizes))},
        **{f"w{i}_wait": size for i, size in enumerate(sizes)},
    }
    backend.campaigns.put_new(item)
    detail = {"release": release.version, "vehicles": len(vehicles), "waves": sizes, "kind": spec.kind}
    backend.audit.record(campaign_id, "CREATE", operator, reason, detail, now=now)
    return backend.campaign(campaign_id)


def list_campaigns(clients: ClientFactory, resources: Resources) -> list[Campaign]:
    """Every campaign, newest first."""
    items = ota_backend(clients, resources).campaigns.list_all()
    return sorted((Campaign.from_item(i) for i in items), key=lambda c: c.created_at, reverse=True)


def get_campaign(campaign_id: str, clients: ClientFactory, resources: Resources) -> Campaign:
    return ota_backend(clients, resources).campaign(campaign_id)


def list_deployments(
    campaign_id: str, clients: ClientFactory, resources: Resources, limit: int | None = None
) -> list[dict[str, Any]]:
    """The campaign's deployments (vin, state, wave, attempt, reason, error_code, ...)."""
    return ota_backend(clients, resources).deployments.for_campaign(campaign_id, limit)


def campaign_history(campaign_id: str, clients: ClientFactory, resources: Resources) -> list[dict[str, Any]]:
    """The campaign's audit trail, newest first: who did what, when and why."""
    return ota_backend(clients, resources).audit.history(campaign_id)
