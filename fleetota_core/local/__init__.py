"""The embedded local stack: moto in server mode, provisioned from ``infra/template.yaml``, plus
a local Lambda runtime for what moto does not do (SQS event sources, schedules, alarms, EMF).

``start_local_stack(settings)`` is what the dashboard calls; ``python -m fleetota_core local ...`` is
the command line.
"""

from __future__ import annotations

from fleetota_core.local.lifecycle import (
    LocalStackStatus,
    ensure_running,
    local_status,
    reset_stack,
    start_local_stack,
)

__all__ = ["LocalStackStatus", "ensure_running", "local_status", "reset_stack", "start_local_stack"]
