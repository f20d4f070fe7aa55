"""The dashboard's shared fleet: read once, then a newer version read in the background while the
previous one is served."""

from __future__ import annotations

import threading

import pandas as pd

from fleetota_core.errors import UnavailableError
from fleetota_core.views.fleet_store import FleetStore


def frame(name: str) -> pd.DataFrame:
    return pd.DataFrame({"vin": [name]})


def wait_until(condition, timeout_s: float = 5.0) -> None:
    done = threading.Event()
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("timed out")


def test_the_first_read_blocks_and_later_calls_of_the_same_version_read_nothing() -> None:
    store, reads = FleetStore(), []

    first = store.get("v1", lambda: reads.append("v1") or frame("a"))
    again = store.get("v1", lambda: reads.append("again") or frame("b"))

    assert reads == ["v1"]
    assert first[0] == again[0] == "v1" and again[1]["vin"].tolist() == ["a"]


def test_a_newer_version_is_read_in_the_background_while_the_previous_fleet_is_served() -> None:
    store = FleetStore()
    store.get("v1", lambda: frame("old"))
    release = threading.Event()

    def slow_read() -> pd.DataFrame:
        release.wait(5)
        return frame("new")

    during = store.get("v2", slow_read)
    also_during = store.get("v2", lambda: frame("a second read"))

    assert during[0] == also_during[0] == "v1" and during[1]["vin"].tolist() == ["old"]
    assert store.refreshes == 1, "one read in flight, whoever asks"
    release.set()
    wait_until(lambda: store.get("v2", slow_read)[0] == "v2")
    assert store.get("v2", slow_read)[1]["vin"].tolist() == ["new"]


def test_a_failed_background_read_keeps_the_previous_fleet_and_is_tried_again() -> None:
    store = FleetStore()
    store.get("v1", lambda: frame("old"))

    def unavailable() -> pd.DataFrame:
        raise UnavailableError("the endpoint cannot be reached")

    assert store.get("v2", unavailable)[0] == "v1"
    wait_until(lambda: store.get("v2", lambda: frame("new"))[0] == "v2")
    assert store.refreshes == 2


def test_a_caller_changing_its_frame_does_not_change_the_shared_one() -> None:
    store = FleetStore()
    store.get("v1", lambda: frame("a"))

    mine = store.get("v1", lambda: frame("b"))[1]
    mine.loc[0, "vin"] = "changed"
    mine["extra"] = 1

    assert store.get("v1", lambda: frame("c"))[1].to_dict("list") == {"vin": ["a"]}
