"""A new campaign's deployments are written many requests at a time, while the next are encoded; a
request that fails in one of the writing threads fails the creation with its error, sends no further
request, and leaves no campaign, roster or audit entry behind (issue #16)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from campaign_fakes import FakeClock, FakeWorld, VehiclesFake
from campaign_world import MODEL, spec, vehicle

from fleetota_core.adapters import deployment_store
from fleetota_core.adapters.clients import client_factory
from fleetota_core.adapters.deployment_store import DeploymentStore
from fleetota_core.domain.creation import NewDeployments
from fleetota_core.domain.enrolment import Candidate
from fleetota_core.domain.vin import with_check_digit
from fleetota_core.errors import PermanentError, TransientAWSError
from fleetota_core.services.campaigns.create import create_campaign, list_campaigns
from fleetota_core.services.campaigns.releases import publish_release
from fleetota_core.settings import Settings

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class DeploymentsTable:
    """BatchWriteItem on the deployments table: each request held ``hold_s`` (a network wait), the
    ``fail_at``-th refused with ``code``; what was written and how many requests were under way."""

    def __init__(self, hold_s: float = 0.0, fail_at: int | None = None, code: str = "") -> None:
        self.hold_s, self.fail_at, self.code = hold_s, fail_at, code
        self.lock = threading.Lock()
        self.vins: list[str] = []
        self.requests = 0
        self.under_way = 0
        self.most_under_way = 0
        self.sent_after_failure = 0
        self.failed = False

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, requests),) = RequestItems.items()
        assert table == "deployments" and len(requests) <= 25
        with self.lock:
            self.requests += 1
            number = self.requests
            self.sent_after_failure += self.failed
            self.under_way += 1
            self.most_under_way = max(self.most_under_way, self.under_way)
        try:
            time.sleep(self.hold_s)
            if number == self.fail_at:
                with self.lock:
                    self.failed = True
                raise ClientError({"Error": {"Code": self.code, "Message": "refused"}}, "BatchWriteItem")
            with self.lock:
                self.vins.extend(r["PutRequest"]["Item"]["vin"]["S"] for r in requests)
            return {}
        finally:
            with self.lock:
                self.under_way -= 1


def new_deployments(n: int) -> NewDeployments:
    vehicles = [
        Candidate(with_check_digit(f"5YJ3E1EA0P{i:07d}"), MODEL, "HW4", "eu", "1.0.0") for i in range(n)
    ]
    return NewDeployments("c20261130-0000abcd", NOW, NOW, vehicles, [i * 3 // n for i in range(n)])


def test_a_new_campaigns_deployments_are_written_each_once_many_requests_at_a_time() -> None:
    table = DeploymentsTable(hold_s=0.005)
    new = new_deployments(10_000)
    assert DeploymentStore(table, "deployments").put_new(new) == 10_000
    assert sorted(table.vins) == sorted(v.vin for v in new.vehicles)  # each one, once
    assert table.requests == 400
    # Many requests wait on the network at once; never more than the writing threads.
    assert 16 < table.most_under_way <= deployment_store.WRITE_THREADS


def test_a_request_failing_in_a_writing_thread_stops_the_writes_and_raises_its_error() -> None:
    # Given 800 requests to send, the 5th refused by DynamoDB as throttled
    table = DeploymentsTable(hold_s=0.002, fail_at=5, code="ProvisionedThroughputExceededException")
    # When they are written, Then the throttling error is raised, of its class (retryable) ...
    with pytest.raises(
        TransientAWSError, match=r"writing deployments to table deployments stopped after"
    ) as exc:
        DeploymentStore(table, "deployments").put_new(new_deployments(20_000))
    assert "ProvisionedThroughputExceededException" in str(exc.value)
    # ... saying how many deployments were written (every other request under way went through)
    assert f"after {len(table.vins):,} were written" in str(exc.value)
    # ... and no request is sent once the failure is known: only those already under way ended (one
    # may slip in between the table refusing and the store hearing of it)
    assert table.sent_after_failure <= 2
    assert table.requests < 800


def test_a_refused_request_is_a_permanent_error_naming_the_write() -> None:
    table = DeploymentsTable(fail_at=1, code="ValidationException")
    with pytest.raises(PermanentError, match=r"writing table deployments: AWS ValidationException: refused"):
        DeploymentStore(table, "deployments").put_new(new_deployments(30))


def test_a_failed_deployment_write_fails_the_create_and_nothing_is_reported_as_created() -> None:
    # Given a fleet of 3,000 vehicles, and a deployments table that refuses the 7th request
    world = FakeWorld(clock=FakeClock(NOW), vehicles=VehiclesFake([vehicle(n, NOW) for n in range(3_000)]))
    publish_release(b"firmware" * 64, "2.0.0", [MODEL], [], None, "", "alice", world.ports)
    table = DeploymentsTable(hold_s=0.001, fail_at=7, code="InternalServerError")
    ports = replace(world.ports, deployments=DeploymentStore(table, "deployments"))
    # When a campaign is created over it, Then the creation fails with the write's error
    with pytest.raises(
        TransientAWSError, match=r"stopped after [\d,]+ were written: writing table deployments"
    ):
        create_campaign(spec(), "alice", ports, now=NOW)
    # And no campaign exists, no wave has a roster (the tick would find none), no CREATE is audited
    assert list_campaigns(ports) == [] and world.campaigns.rows == {}
    assert world.schedule.rosters == {}
    assert [e for e in world.audit.events if e["action"] == "CREATE"] == []
    assert 0 < table.requests < 120  # 3,000 deployments are 120 requests


def test_the_clients_keep_a_connection_for_each_writing_thread() -> None:
    # botocore keeps 10 by default: the other threads' requests would each open a connection.
    config = client_factory(Settings(local_port=4998)).dynamodb.meta.config
    assert config.max_pool_connections >= deployment_store.WRITE_THREADS
