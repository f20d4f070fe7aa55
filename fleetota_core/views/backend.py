"""Which backend the dashboard talks to, and how to describe it to an operator."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fleetota_core.adapters.aws_errors import AWS_CLIENT_ERRORS, aws_error_text, is_unreachable
from fleetota_core.adapters.clients import client_factory
from fleetota_core.adapters.resources import resolve_resources
from fleetota_core.errors import ConfigurationError, FleetOTAError, UnavailableError

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources
    from fleetota_core.settings import Settings


# Everything a dashboard read or action can raise because of the backend (not because of a bug).
BACKEND_ERRORS: tuple[type[Exception], ...] = (FleetOTAError, *AWS_CLIENT_ERRORS)


def backend_error_message(exc: BaseException) -> str:
    """One line for the operator: unreachable endpoint, a domain error's message, or the AWS error."""
    if is_unreachable(exc):
        return (
            f"Backend unreachable: {exc}. Locally, start it with `python -m fleetota_core local up`; "
            "on AWS, check the network and credentials."
        )
    if isinstance(exc, UnavailableError):
        return f"Backend unreachable: {exc}"
    if isinstance(exc, FleetOTAError):
        return str(exc)
    return aws_error_text(exc) or f"Backend error: {exc}"


@dataclass(frozen=True)
class Backend:
    settings: Settings
    clients: ClientFactory
    resources: Resources
    status: str = ""  # how the local stack was reached ("moto at ..., attached, ready")

    @property
    def key(self) -> str:
        """Identifies the backend in cache keys, so two backends never share cached data."""
        return f"{self.settings.mode}|{self.settings.endpoint_url}|{self.settings.stack_name}"

    @property
    def label(self) -> str:
        if self.settings.is_local:
            return "Local stack"
        return f"AWS · stack {self.settings.stack_name} · {self.settings.region}"


def start_local_stack(settings: Settings) -> str:
    """Attach to the local AWS endpoint, starting it when none is listening; returns what happened."""
    try:
        local = importlib.import_module("fleetota_core.local")
    except ImportError as exc:
        raise ConfigurationError("the local stack package fleetota_core.local is not installed") from exc
    ensure_running = getattr(local, "ensure_running", None)
    if ensure_running is None:
        raise ConfigurationError("fleetota_core.local has no ensure_running(); update FleetOTA")
    result = ensure_running(settings)
    return str(result) if result is not None else "running"


def connect(settings: Settings, status: str = "") -> Backend:
    """Clients and resource names for ``settings`` (no AWS call in local mode)."""
    clients = client_factory(settings)
    resources = resolve_resources(settings, clients)
    return Backend(settings=settings, clients=clients, resources=resources, status=status)
