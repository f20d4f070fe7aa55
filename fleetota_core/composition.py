"""The composition root's one builder: the campaign ports over real AWS adapters.

Each entry point (the update-manager and telemetry-processor handlers, the CLI, the dashboard's
views) calls :func:`campaign_ports` once with its clients and resource names; nothing below the
entry points picks an adapter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleetota_core.adapters.audit import AuditLog
from fleetota_core.adapters.campaign_enrolment import CampaignEnrolment
from fleetota_core.adapters.campaign_store import CampaignStore
from fleetota_core.adapters.clients import client_factory
from fleetota_core.adapters.cloudwatch_metrics import OtaMetrics
from fleetota_core.adapters.deployment_schedule import DeploymentSchedule
from fleetota_core.adapters.deployment_store import DeploymentStore
from fleetota_core.adapters.firmware_store import FirmwareStore
from fleetota_core.adapters.fleet_changes import SnapshotDeltaFeed
from fleetota_core.adapters.fleet_shard_rows import SnapshotLastSeen
from fleetota_core.adapters.notifier import Notifier
from fleetota_core.adapters.resources import resolve_resources
from fleetota_core.adapters.signing import KmsSigner
from fleetota_core.adapters.soak_baselines import SoakBaselineStore
from fleetota_core.adapters.vehicle_directory import VehicleDirectory
from fleetota_core.domain.approval import ApprovalPolicy
from fleetota_core.services.campaigns.ports import CampaignPorts, Clock, SystemClock
from fleetota_core.services.ingest.fleet_health import DELTA_RETENTION, DELTA_SETTLE

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources
    from fleetota_core.adapters.vehicle_directory import LastSeen
    from fleetota_core.settings import Settings


def campaign_ports(
    clients: ClientFactory,
    resources: Resources,
    clock: Clock | None = None,
    approval: ApprovalPolicy | None = None,
    last_seen: LastSeen | None = None,
) -> CampaignPorts:
    """The campaign ports on AWS. ``last_seen``: the fleet snapshot's rows when the caller has them
    (the update manager refreshes it each tick); by default read from S3 once, when first needed."""
    dynamodb = clients.dynamodb
    snapshot = SnapshotLastSeen(clients, resources)
    return CampaignPorts(
        campaigns=CampaignStore(dynamodb, resources.campaigns_table),
        deployments=DeploymentStore(dynamodb, resources.deployments_table),
        schedule=DeploymentSchedule(dynamodb, resources.ledger_table),
        vehicles=VehicleDirectory(
            dynamodb,
            resources.vehicles_table,
            resources.registry_table,
            last_seen or snapshot,
            # Targeting reads the snapshot: the caller's rows when it has them, else the stored one.
            last_seen or snapshot.fleet,
        ),
        releases=FirmwareStore(clients.s3, resources.firmware_bucket),
        image_signer=KmsSigner(clients.kms, resources.image_key_alias),
        director_signer=KmsSigner(clients.kms, resources.director_key_alias),
        notifier=Notifier(
            clients.sns, resources.job_topic_arn, resources.alerts_topic_arn, dynamodb, resources.ledger_table
        ),
        metrics=OtaMetrics(),
        audit=AuditLog(dynamodb, resources.audit_table),
        clock=clock or SystemClock(),
        # Continuous campaigns read the snapshot's deltas as the fleet's change feed.
        fleet_changes=SnapshotDeltaFeed(
            clients.s3,
            resources.telemetry_bucket,
            DELTA_SETTLE,
            DELTA_RETENTION,
            dynamodb,
            resources.vehicles_table,
        ),
        enrolments=CampaignEnrolment(dynamodb, resources.campaigns_table, resources.deployments_table),
        approval=approval or ApprovalPolicy(),
        soak_baselines=SoakBaselineStore(dynamodb, resources.ledger_table),
    )


def approval_policy(settings: Settings) -> ApprovalPolicy:
    """The deployment's four-eyes setting (``FLEETOTA_APPROVAL_MIN_VEHICLES``)."""
    return ApprovalPolicy(min_vehicles=settings.approval_min_vehicles)


def ports_for(settings: Settings) -> CampaignPorts:
    """Campaign ports over the backend ``settings`` name (AWS mode reads the stack's outputs)."""
    clients = client_factory(settings)
    return campaign_ports(clients, resolve_resources(settings, clients), approval=approval_policy(settings))
