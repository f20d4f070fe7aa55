"""Update manager: once per EventBridge schedule tick, advance every campaign (services.campaigns.tick)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from fleetota_core.adapters.clients import client_factory
from fleetota_core.adapters.resources import resolve_resources
from fleetota_core.composition import approval_policy, campaign_ports
from fleetota_core.services.campaigns.tick import run_tick
from fleetota_core.services.ingest.fleet_health import publish_fleet_health
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
    result = run_tick(campaign_ports(clients, resources, approval=approval_policy(settings)))
    # The telemetry pipeline owns fleet health; this schedule is the one that runs it.
    publish_fleet_health(clients, resources)
    logger.info("tick", extra={"time": event.get("time"), **result.as_dict()})
    metrics.add_metric(name="TickDuration", unit=MetricUnit.Seconds, value=result.duration_s)
    metrics.add_metric(name="Notified", unit=MetricUnit.Count, value=result.notified)
    return {"tick": event.get("time"), **result.as_dict()}
