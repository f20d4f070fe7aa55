"""The cyclic collector is paused while a fleet-sized read or write runs, and as it was afterwards."""

from __future__ import annotations

import gc
import threading
from typing import Any

from test_deployment_writes import new_deployments
from test_directory_candidates import N, Registry, row, vin

from fleetota_core.adapters.deployment_store import DeploymentStore
from fleetota_core.adapters.gc_pause import collector_paused
from fleetota_core.adapters.vehicle_directory import VehicleDirectory


def test_the_pause_nests_and_restores_the_collector_as_it_was() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled(), "the outer pause still holds"
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled(), "a collector disabled before stays disabled"
    finally:
        gc.enable()


def test_the_collector_resumes_when_the_last_of_two_threads_is_done() -> None:
    inside, leave = threading.Barrier(2), threading.Event()

    def reader() -> None:
        with collector_paused():
            inside.wait()
            leave.wait()

    other = threading.Thread(target=reader)
    other.start()
    with collector_paused():
        inside.wait()
    assert not gc.isenabled(), "the other thread's read goes on"
    leave.set()
    other.join()
    assert gc.isenabled()


def test_an_error_inside_the_pause_still_restores_the_collector() -> None:
    try:
        with collector_paused():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.isenabled()


class Watching(Registry):
    """The registry fake, noting whether the collector ran while it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.collector: set[bool] = set()

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.collector.add(gc.isenabled())
        return super().batch_get_item(RequestItems)

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.collector.add(gc.isenabled())
        return {}


def test_targeting_and_the_deployment_writes_run_with_the_collector_paused() -> None:
    rows = {vin(n): row(n) for n in range(N)}
    table = Watching()
    directory = VehicleDirectory(table, "vehicles", "registry", lambda: rows, lambda: rows)
    assert directory.candidates() and table.collector == {False} and gc.isenabled()  # creation
    table.collector.clear()
    assert directory.all() and table.collector == {False} and gc.isenabled()  # preview
    table.collector.clear()
    assert DeploymentStore(table, "deployments").put_new(new_deployments(1_000)) == 1_000
    assert table.collector == {False} and gc.isenabled()
