"""Update manager: runs once per EventBridge schedule tick.

Minimal wiring: it logs the tick. The campaign service replaces the body; ``handler(event,
context)`` stays the entrypoint.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.info("schedule tick", extra={"time": event.get("time"), "resources": event.get("resources", [])})
    metrics.add_metric(name="SchedulerTicks", unit=MetricUnit.Count, value=1)
    return {"tick": event.get("time")}
