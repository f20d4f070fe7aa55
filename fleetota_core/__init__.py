"""FleetOTA core library: domain, services, adapters, read models and the embedded local stack."""

from __future__ import annotations

__version__ = "0.1.0"
