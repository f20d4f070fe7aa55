"""Which backend the dashboard talks to, and how to describe it to an operator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fleetota_core.adapters.aws_errors import AWS_CLIENT_ERRORS, aws_error_text, is_unreachable
from fleetota_core.adapters.clients import client_factory
from fleetota_core.adapters.resources import resolve_resources
from fleetota_core.composition import approval_policy, campaign_ports
from fleetota_core.errors import FleetOTAError, UnavailableError
from fleetota_core.local import start_local_stack

if TYPE_CHECKING:
    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources
    from fleetota_core.services.campaigns.ports import CampaignPorts
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
    ports: CampaignPorts
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


def connect(settings: Settings, status: str = "") -> Backend:
    """Clients and resource names for ``settings`` (no AWS call in local mode)."""
    clients = client_factory(settings)
    resources = resolve_resources(settings, clients)
    # The dashboard's composition root: the campaign ports every page's campaign calls go through.
    ports = campaign_ports(clients, resources, approval=approval_policy(settings))
    return Backend(settings=settings, clients=clients, resources=resources, ports=ports, status=status)


def open_backend(settings: Settings) -> Backend:
    """The dashboard's backend; in local mode the local stack is started first when none is listening."""
    status = start_local_stack(settings) if settings.is_local else ""
    return connect(settings, status)
