"""The campaign read model and the stores every campaign use case needs, wired from injected clients."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime  # noqa: TC003 - pydantic needs it at runtime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from fleetota_core.adapters.audit import AuditLog
from fleetota_core.adapters.campaign_store import CampaignStore, VehicleLookup
from fleetota_core.adapters.cloudwatch_metrics import OtaMetrics
from fleetota_core.adapters.deployment_schedule import DeploymentSchedule
from fleetota_core.adapters.deployment_store import DeploymentStore
from fleetota_core.adapters.firmware_store import FirmwareStore
from fleetota_core.adapters.notifier import Notifier
from fleetota_core.adapters.signing import KmsSigner
from fleetota_core.domain.campaign import CampaignCounters, CampaignSpec, CampaignState, Progress
from fleetota_core.domain.deployment import DeploymentState
from fleetota_core.domain.firmware import FirmwareRelease
from fleetota_core.domain.vehicle import Vehicle
from fleetota_core.errors import ResourceNotFoundError

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources


class Campaign(BaseModel):
    """A campaign as stored: its spec and release, where the rollout is, and its counters."""

    model_config = ConfigDict(frozen=True)

    campaign_id: str
    spec: CampaignSpec
    release: FirmwareRelease
    state: CampaignState
    state_reason: str = ""
    current_wave: int = 0
    wave_sizes: tuple[int, ...]
    counters: CampaignCounters
    acknowledged_failures: int = 0
    version: int = 0
    created_at: datetime
    created_by: str
    updated_at: datetime

    @property
    def total(self) -> int:
        return sum(self.wave_sizes)

    @property
    def in_flight(self) -> int:
        return self.counters.in_flight

    def progress(self) -> Progress:
        return Progress(
            self.state, self.current_wave, self.wave_sizes, self.counters, self.acknowledged_failures
        )

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Campaign:
        waves = len(item["wave_sizes"])
        counters = CampaignCounters(
            states={s.value: int(item.get(f"n_{s.value}", 0)) for s in DeploymentState},
            wave_succeeded=[int(item.get(f"w{i}_ok", 0)) for i in range(waves)],
            wave_failed=[int(item.get(f"w{i}_fail", 0)) for i in range(waves)],
            wave_waiting=[int(item.get(f"w{i}_wait", 1)) for i in range(waves)],
        )
        return cls(
            campaign_id=item["campaign_id"],
            spec=CampaignSpec.model_validate_json(item["spec"]),
            release=FirmwareRelease.model_validate_json(item["release"]),
            state=CampaignState(item["state"]),
            state_reason=item.get("state_reason", ""),
            current_wave=int(item.get("current_wave", 0)),
            wave_sizes=tuple(int(n) for n in item["wave_sizes"]),
            counters=counters,
            acknowledged_failures=int(item.get("acknowledged_failures", 0)),
            version=int(item.get("version", 0)),
            created_at=item["created_at"],
            created_by=item["created_by"],
            updated_at=item.get("updated_at", item["created_at"]),
        )

    def summary(self) -> dict[str, Any]:
        """A flat dict for tables and ``--json``."""
        c = self.counters
        return {
            "campaign_id": self.campaign_id,
            "name": self.spec.name,
            "kind": self.spec.kind,
            "release": self.release.version,
            "state": self.state.value,
            "state_reason": self.state_reason,
            "wave": f"{self.current_wave + 1}/{len(self.wave_sizes)}",
            "total": self.total,
            "in_flight": c.in_flight,
            "succeeded": c.succeeded,
            "failed": c.failed,
            "deferred": c.count("DEFERRED"),
            "success_rate": None if c.success_rate() is None else round(c.success_rate() or 0, 1),
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }


@dataclass
class OtaBackend:
    campaigns: CampaignStore
    deployments: DeploymentStore
    firmware: FirmwareStore
    signer: KmsSigner
    notifier: Notifier
    metrics: OtaMetrics
    audit: AuditLog
    vehicles: VehicleLookup

    def campaign(self, campaign_id: str) -> Campaign:
        item = self.campaigns.get(campaign_id)
        if item is None:
            raise ResourceNotFoundError(f"campaign {campaign_id} does not exist")
        return Campaign.from_item(item)


def ota_backend(clients: ClientFactory, resources: Resources) -> OtaBackend:
    dynamodb = clients.dynamodb
    return OtaBackend(
        campaigns=CampaignStore(dynamodb, resources.campaigns_table),
        deployments=DeploymentStore(
            dynamodb,
            resources.deployments_table,
            resources.campaigns_table,
            DeploymentSchedule(dynamodb, resources.ledger_table),
        ),
        firmware=FirmwareStore(clients.s3, resources.firmware_bucket),
        signer=KmsSigner(clients.kms, resources.signing_key_alias),
        notifier=Notifier(
            clients.sns, resources.job_topic_arn, resources.alerts_topic_arn, dynamodb, resources.ledger_table
        ),
        metrics=OtaMetrics(clients.cloudwatch),
        audit=AuditLog(dynamodb, resources.audit_table),
        vehicles=VehicleLookup(dynamodb, resources.vehicles_table),
    )


def parse_vehicle(item: dict[str, Any] | None) -> Vehicle | None:
    """A vehicles-table item as a Vehicle, or None when it is missing or not yet complete."""
    if not item:
        return None
    try:
        return Vehicle.model_validate(item)
    except ValueError:
        return None


def spec_json(spec: CampaignSpec) -> str:
    return json.dumps(spec.model_dump(mode="json"), sort_keys=True)
