"""One lazily cached boto3 client factory for every AWS service FleetOTA talks to."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from fleetota_core.settings import Settings

# Connections a client keeps for reuse: as many as the widest thread pool that shares it (a new
# campaign's deployment writes, ``deployment_store.WRITE_THREADS``); botocore's default is 10, and a
# request beyond the pool opens a connection (a TLS handshake on AWS) that is then thrown away.
POOL_CONNECTIONS = 64
# Local mode: moto answers unimplemented calls with HTTP 500, so retrying only hides the problem.
_LOCAL_CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"},
    connect_timeout=3,
    read_timeout=30,
    max_pool_connections=POOL_CONNECTIONS,
)
_AWS_CONFIG = Config(retries={"max_attempts": 5, "mode": "adaptive"}, max_pool_connections=POOL_CONNECTIONS)
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class ClientFactory:
    """Builds each boto3 client on first use and reuses it; thread-safe.

    Parameters
    ----------
    settings:
        Decides the endpoint, the region and whether dummy credentials are used.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._session: boto3.session.Session | None = None

    def _new_session(self) -> boto3.session.Session:
        if self.settings.is_local:
            return boto3.session.Session(region_name=self.settings.region, **LOCAL_CREDENTIALS)
        return boto3.session.Session(region_name=self.settings.region, profile_name=self.settings.profile)

    def client(self, service: str) -> Any:
        """The cached client for ``service`` (``"s3"``, ``"dynamodb"``, ...)."""
        with self._lock:
            if service not in self._clients:
                if self._session is None:
                    self._session = self._new_session()
                config = _LOCAL_CONFIG if self.settings.is_local else _AWS_CONFIG
                self._clients[service] = self._session.client(
                    service, endpoint_url=self.settings.endpoint_url, config=config
                )
            return self._clients[service]

    def __getattr__(self, service: str) -> Any:
        # clients.s3, clients.dynamodb ... read better at call sites than clients.client("s3").
        if service.startswith("_"):
            raise AttributeError(service)
        return self.client(service)


_factories: dict[tuple[Any, ...], ClientFactory] = {}
_factories_lock = threading.Lock()


def client_factory(settings: Settings) -> ClientFactory:
    """The process-wide factory for these settings; created lazily, never at import time."""
    key = (settings.mode, settings.region, settings.profile, settings.endpoint_url)
    with _factories_lock:
        if key not in _factories:
            _factories[key] = ClientFactory(settings)
        return _factories[key]
