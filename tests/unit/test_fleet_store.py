"""The dashboard's shared fleet: read once, then a newer version read in the background while the
previous one is served."""

from __future__ import annotations

import threading

import pandas as pd

from fleetota_core.errors import UnavailableError
from fleetota_core.views.fleet_store import FleetStore


def frame(name: str) -> pd.DataFrame:
    return pd.DataFrame({"vin": [name]})


def big_fleet_store(**kwargs) -> FleetStore:
    """A store that treats these one-row frames as a large fleet's (read in the background)."""
    return FleetStore(background_from_rows=0, **kwargs)


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
    store = big_fleet_store()
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
    store = big_fleet_store()
    store.get("v1", lambda: frame("old"))

    def unavailable() -> pd.DataFrame:
        raise UnavailableError("the endpoint cannot be reached")

    assert store.get("v2", unavailable)[0] == "v1"
    wait_until(lambda: store.get("v2", lambda: frame("new"))[0] == "v2")
    assert store.refreshes == 2


def test_a_caller_changing_its_frame_does_not_change_the_shared_one() -> None:
    store = big_fleet_store()
    store.get("v1", lambda: frame("a"))

    mine = store.get("v1", lambda: frame("b"))[1]
    mine.loc[0, "vin"] = "changed"
    mine["extra"] = 1

    assert store.get("v1", lambda: frame("c"))[1].to_dict("list") == {"vin": ["a"]}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_after_the_dashboard_sat_idle_a_new_version_is_read_before_the_page_shows_anything() -> None:
    """A visitor coming back must not first see a fleet of minutes ago (all 'never reported')."""
    clock = Clock()
    store = big_fleet_store(max_stale_s=60, clock=clock)
    store.get("v1", lambda: frame("at launch"))
    clock.now += 150  # nobody looked for 2.5 minutes; the snapshot moved on meanwhile

    version, fleet = store.get("v9", lambda: frame("now"))

    assert (version, fleet["vin"].tolist()) == ("v9", ["now"])
    assert store.refreshes == 0, "read at once, not in the background"


def test_while_someone_watches_a_newer_version_never_blocks_the_page() -> None:
    clock = Clock()
    store = big_fleet_store(max_stale_s=60, clock=clock)
    store.get("v1", lambda: frame("old"))
    for _ in range(5):  # a live page every 15 s confirms v1 is still the latest
        clock.now += 15
        store.get("v1", lambda: frame("unused"))
    release = threading.Event()

    def slow_read() -> pd.DataFrame:
        release.wait(5)
        return frame("new")

    clock.now += 15
    assert store.get("v2", slow_read)[0] == "v1"
    release.set()
    wait_until(lambda: store.get("v2", slow_read)[0] == "v2")


def test_an_older_read_finishing_late_never_replaces_a_newer_fleet() -> None:
    clock = Clock()
    store = big_fleet_store(max_stale_s=60, clock=clock)
    store.get("v1", lambda: frame("first"))
    clock.now += 30
    release, started = threading.Event(), threading.Event()

    def slow_v2() -> pd.DataFrame:
        started.set()
        release.wait(5)
        return frame("v2, read late")

    assert store.get("v2", slow_v2)[0] == "v1"  # v2 read in the background
    assert started.wait(5)
    clock.now += 100  # the background read hangs; later a visitor needs v3 and reads it at once
    assert store.get("v3", lambda: frame("v3"))[0] == "v3"
    release.set()
    wait_until(lambda: store.refreshes == 1 and store._reading is None)
    assert store.get("v3", lambda: frame("unused"))[1]["vin"].tolist() == ["v3"]


def test_a_small_fleets_newer_version_is_read_before_the_page_shows_it() -> None:
    # A young stack's first vehicles show on the page that asks for them, not on the next one.
    store = FleetStore(background_from_rows=10)
    store.get("v1", lambda: frame("empty so far"))

    now = store.get("v2", lambda: pd.DataFrame({"vin": [f"V{n}" for n in range(9)]}))

    assert now[0] == "v2" and len(now[1]) == 9 and store.refreshes == 0
    store.get("v3", lambda: pd.DataFrame({"vin": [f"V{n}" for n in range(10)]}))
    assert store.get("v4", lambda: frame("in the background"))[0] == "v3" and store.refreshes == 1
