"""Integration fixtures: one moto server per session, provisioned from infra/template.yaml.

``stack`` gives each test an empty, fully provisioned local stack (moto reset + provisioning takes
about 0.15 s) with settings, clients, resource names and a :class:`LocalRuntime`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from fleetota_core.adapters.clients import client_factory
from fleetota_core.composition import campaign_ports
from fleetota_core.local.provision import provision
from fleetota_core.local.runtime import LocalRuntime
from fleetota_core.local.server import reset_moto, start_moto
from fleetota_core.local.stack_spec import read_stack_spec
from fleetota_core.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fleetota_core.adapters.clients import ClientFactory
    from fleetota_core.adapters.resources import Resources
    from fleetota_core.local.stack_spec import StackSpec
    from fleetota_core.services.campaigns.ports import CampaignPorts

LOCAL_HOST = "127.0.0.1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@dataclass
class LocalStack:
    """What a test needs to talk to the provisioned local stack."""

    settings: Settings
    clients: ClientFactory
    resources: Resources
    runtime: LocalRuntime
    spec: StackSpec

    @property
    def endpoint_url(self) -> str:
        return self.settings.endpoint_url or ""

    @property
    def ports(self) -> CampaignPorts:
        """The campaign ports over this stack, wired as every entry point wires them."""
        return campaign_ports(self.clients, self.resources)

    def make_runtime(self, **kwargs: object) -> LocalRuntime:
        """Another runtime on the same stack, e.g. with handler overrides or a short visibility timeout."""
        return LocalRuntime(self.settings, clients=self.clients, spec=self.spec, **kwargs)  # type: ignore[arg-type]


DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def use_dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials so no test can ever reach a real AWS account."""
    use_dummy_credentials(monkeypatch)


@pytest.fixture(scope="session")
def moto_port() -> Iterator[int]:
    server = start_moto(LOCAL_HOST, 0)
    _, port = server.get_host_and_port()
    yield port
    server.stop()


@contextmanager
def open_stack(moto_port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """An empty, freshly provisioned local stack on the session's moto server; the runtime stops after."""
    # Code under test that parses settings from the environment must find this server too.
    monkeypatch.setenv("FLEETOTA_MODE", "local")
    monkeypatch.setenv("FLEETOTA_LOCAL_HOST", LOCAL_HOST)
    monkeypatch.setenv("FLEETOTA_LOCAL_PORT", str(moto_port))
    settings = Settings(mode="local", local_host=LOCAL_HOST, local_port=moto_port)
    clients = client_factory(settings)
    spec = read_stack_spec(settings)
    reset_moto(settings.endpoint_url or "")
    provision(spec, clients)
    runtime = LocalRuntime(settings, clients=clients, spec=spec)
    try:
        yield LocalStack(
            settings=settings, clients=clients, resources=spec.resources, runtime=runtime, spec=spec
        )
    finally:
        runtime.stop()


@pytest.fixture
def stack(moto_port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    with open_stack(moto_port, monkeypatch) as local:
        yield local
