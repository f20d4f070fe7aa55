"""Update manager: once per EventBridge schedule tick, advance every campaign (services.campaigns.tick)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from fleetota_core.adapters.clients import client_factory
from fleetota_core.adapters.resources import resolve_resources
from fleetota_core.composition import approval_policy, campaign_ports
from fleetota_core.errors import FleetOTAError
from fleetota_core.services.campaigns.tick import run_tick
from fleetota_core.services.ingest.fleet_health import FleetRefresh, refresh_fleet
from fleetota_core.settings import Settings

logger = Logger()
# service="": keep the tick's own metrics dimensionless, like the alarms expect.
metrics = Metrics(namespace="OTAUpdates", service="")


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings()
    clients = client_factory(settings)
    resources = resolve_resources(settings, clients)
    # The fleet snapshot first: the tick's eligibility reads "last seen" from it (issue #16: the
    # vehicles table holds material changes only). The telemetry pipeline owns fleet health; this
    # schedule is the one that runs it.
    fleet: FleetRefresh | None = None
    try:
        fleet = refresh_fleet(clients, resources)
    except FleetOTAError as exc:
        # Campaigns still advance (last seen then comes from the stored snapshot); the invocation
        # fails afterwards so the error shows in the function's Errors metric.
        failure: FleetOTAError | None = exc
        logger.exception("fleet snapshot refresh failed; ticking campaigns anyway")
    else:
        failure = None
    rows = fleet.rows if fleet is not None else None
    last_seen = (lambda: rows) if rows is not None else None
    result = run_tick(
        campaign_ports(clients, resources, approval=approval_policy(settings), last_seen=last_seen)
    )
    if failure is not None:
        raise failure
    logger.info("tick", extra={"time": event.get("time"), **result.as_dict()})
    metrics.add_metric(name="TickDuration", unit=MetricUnit.Seconds, value=result.duration_s)
    metrics.add_metric(name="Notified", unit=MetricUnit.Count, value=result.notified)
    return {"tick": event.get("time"), **result.as_dict()}
