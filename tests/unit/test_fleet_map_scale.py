"""The fleet map and the vehicles table at fleet scale: cells, the server's choice, one page of rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from fleetota_core.domain.vehicle import battery_category
from fleetota_core.local.sample_fleet import sample_fleet, sample_snapshot_rows
from fleetota_core.services.ingest.fleet_health import merge_rows
from fleetota_core.views.fleet import normalize_fleet
from fleetota_core.views.fleet_bins import WORLD, bin_fleet, cell_size
from fleetota_core.views.fleet_map import clicked_cell, offline_map
from fleetota_core.views.map_view import POINT_LIMIT, cell_viewport, focus_label, plan_map
from fleetota_core.views.vehicle_table import vehicle_page


def positions(*points: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    lat, lon = zip(*points, strict=True)
    return np.array(lat, dtype=float), np.array(lon, dtype=float)


def test_vehicles_are_counted_in_the_cell_they_are_in_with_its_majority_and_mix() -> None:
    # Given three parked and one driving vehicle in one 1-degree cell, one in another, one far away
    # and one without a position, in a 40-degree view (cells of 1 degree)
    lat, lon = positions((10.2, 20.2), (10.4, 20.9), (10.9, 20.5), (10.5, 20.5), (12.5, 22.5), (60, 100))
    lat, lon = np.append(lat, np.nan), np.append(lon, np.nan)
    status = pd.Series(["parked", "parked", "parked", "driving", "charging", "parked", "parked"])

    bins = bin_fleet(lat, lon, status, (0.0, 0.0, 40.0, 40.0))

    assert cell_size((0.0, 0.0, 40.0, 40.0)) == 1.0
    assert bins["count"].tolist() == [4, 1]  # the far and the unlocated vehicle are not counted
    first = bins.iloc[0]
    assert (first["south"], first["west"], first["north"], first["east"]) == (10.0, 20.0, 11.0, 21.0)
    assert first["dominant"] == "parked"
    assert first["mix"] == "parked 75 % · driving 25 %"
    assert (first["lat"], first["lon"]) == (
        np.mean([10.2, 10.4, 10.9, 10.5]),
        np.mean([20.2, 20.9, 20.5, 20.5]),
    )
    assert bins.iloc[1]["dominant"] == "charging"


def test_a_cell_zoomed_into_splits_into_finer_cells_that_count_the_same_vehicles() -> None:
    fleet = normalize_fleet(sample_fleet(8_000, seed=5))
    lat, lon = fleet["lat"].to_numpy(), fleet["lon"].to_numpy()

    world = bin_fleet(lat, lon, fleet["status"], WORLD)
    busiest = world.iloc[0]
    finer = bin_fleet(lat, lon, fleet["status"], cell_viewport(busiest))

    assert world["count"].sum() == 8_000
    assert finer["count"].sum() == busiest["count"]
    assert len(finer) > 1 and (finer["north"] - finer["south"]).max() < busiest["north"] - busiest["south"]
    # The grid is global: every finer cell lies inside the cell it was zoomed from.
    assert (finer["south"] >= busiest["south"]).all() and (finer["north"] <= busiest["north"]).all()
    assert (finer["west"] >= busiest["west"]).all() and (finer["east"] <= busiest["east"]).all()


def test_the_server_sends_the_vehicles_when_few_are_in_view_and_cells_when_many_are() -> None:
    fleet = normalize_fleet(sample_fleet(8_000, seed=6))

    whole = plan_map(fleet, "status")
    cell = whole.bins.iloc[0]
    zoomed = plan_map(fleet, "status", focus=cell_viewport(cell))
    while zoomed.binned:  # zoom into the busiest cell until its vehicles are drawn one by one
        cell = zoomed.bins.iloc[0]
        zoomed = plan_map(fleet, "status", focus=cell_viewport(cell))

    assert whole.binned and whole.in_view == 8_000 and whole.vehicles.empty
    assert len(whole.bins) < 100  # eight metros, each in a few cells
    assert not zoomed.binned and 0 < len(zoomed.vehicles) <= POINT_LIMIT
    assert len(zoomed.vehicles) == cell["count"]
    south, west, north, east = cell_viewport(cell)
    assert zoomed.vehicles["lat"].between(south, north).all()
    assert zoomed.vehicles["lon"].between(west, east).all()
    assert "vehicles" in focus_label(cell) and f"{int(cell['count']):,}" in focus_label(cell)


def test_the_map_of_a_large_fleet_draws_a_bounded_number_of_cells_and_escapes_vehicle_text() -> None:
    fleet = normalize_fleet(sample_fleet(8_000, seed=7))
    fleet.loc[:5_000, "firmware_version"] = "<b>9.9.9</b>"  # a vehicle-reported string

    figure = offline_map(fleet, "Firmware version")

    markers = sum(len(t.lat) for t in figure.data)
    assert {t.type for t in figure.data} == {"scattergeo"}
    assert 0 < markers < 100
    assert sum(sum(c[0] for c in t.customdata) for t in figure.data) == 8_000
    text = json.dumps([t.name for t in figure.data] + [c[1] for t in figure.data for c in t.customdata])
    assert "<b>" not in text and "&lt;b&gt;9.9.9&lt;/b&gt;" in text
    assert figure.layout.geo.resolution == 110  # coarse outlines for a view of two continents


def test_the_vehicles_table_is_filtered_then_cut_into_pages_on_the_server() -> None:
    fleet = normalize_fleet(sample_fleet(1_050, seed=8))
    model = fleet["model"].iloc[0]

    first = vehicle_page(fleet)
    last = vehicle_page(fleet, page=11)
    past_the_end = vehicle_page(fleet, page=99)
    one_model = vehicle_page(fleet, page=2, models=[model])
    one_vin = vehicle_page(fleet, text=fleet["vin"].iloc[700].lower())

    assert (first.matched, first.pages, len(first.rows), first.first) == (1_050, 11, 100, 1)
    assert first.rows["vin"].tolist() == fleet["vin"].iloc[:100].tolist()
    assert (len(last.rows), last.first) == (50, 1_001)
    assert last.rows["vin"].tolist() == fleet["vin"].iloc[1_000:].tolist()
    assert past_the_end.page == 11 and past_the_end.rows.equals(last.rows)
    assert one_model.matched == (fleet["model"] == model).sum()
    assert (one_model.rows["model"] == model).all() and len(one_model.rows) == min(
        100, one_model.matched - 100
    )
    assert one_vin.rows["vin"].tolist() == [fleet["vin"].iloc[700]]
    nothing = vehicle_page(fleet, text="no such vehicle")
    assert (nothing.matched, nothing.pages, len(nothing.rows), nothing.first) == (0, 1, 0, 0)


def test_the_benchmarks_synthetic_snapshot_rows_are_what_the_update_manager_would_write() -> None:
    now = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    fleet = sample_fleet(60, seed=60, now=now)
    fleet["battery_category"] = fleet["soc_pct"].map(lambda s: battery_category(s).value)
    fleet["needs_update"] = fleet["firmware_version"] != "2.0.0"
    fleet["newest_compatible"] = "2.0.0"
    fleet["last_ts"] = pd.to_datetime(fleet["last_ts"], utc=True).dt.floor("ms")
    fleet["last_seq"] = 1

    expected = merge_rows({}, fleet.to_dict("records"))

    assert fleet["signal_dbm"].isna().any()  # offline vehicles: a missing number becomes null
    assert sample_snapshot_rows(60, now=now) == expected


def test_a_click_on_a_cell_zooms_to_the_box_around_that_cells_vehicles() -> None:
    fleet = normalize_fleet(sample_fleet(8_000, seed=9))
    view = plan_map(fleet, "status")
    figure = offline_map(fleet, "Status")
    trace = figure.data[0]
    clicked = {"curve_number": 0, "point_index": 0, "customdata": list(trace.customdata[0])}

    zoomed_to = clicked_cell([{"curve_number": 0, "point_index": 0}, clicked])

    cell = view.bins[
        (view.bins["lat"].round(4) == trace.lat[0]) & (view.bins["lon"].round(4) == trace.lon[0])
    ]
    assert len(cell) == 1
    assert zoomed_to == cell_viewport(cell.iloc[0])
    assert clicked_cell([{"curve_number": 0, "point_index": 3}]) is None  # a vehicle, not a cell
