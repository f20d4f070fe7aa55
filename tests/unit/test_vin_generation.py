"""Generated VINs pass an independent ISO 3779 check: this file re-implements the rules itself."""

from __future__ import annotations

import random

import pytest

from simulator.catalogue import CATALOGUE
from simulator.fleet import VinFactory, generate_fleet

# Independent of fleetota_core.domain.vin: the published transliteration table and weights.
TRANSLIT = dict(zip("0123456789", range(10), strict=True)) | {
    "A": 1, "B": 2, "C": 3, "D": 4, "E": 5, "F": 6, "G": 7, "H": 8,
    "J": 1, "K": 2, "L": 3, "M": 4, "N": 5, "P": 7, "R": 9,
    "S": 2, "T": 3, "U": 4, "V": 5, "W": 6, "X": 7, "Y": 8, "Z": 9,
}  # fmt: skip
WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]
YEAR_CODE = {2019: "K", 2020: "L", 2021: "M", 2022: "N", 2023: "P", 2024: "R", 2025: "S", 2026: "T"}
# Real WMIs as published by the makers (SAE/NHTSA WMI register).
KNOWN_WMI = {
    "Tesla": {"5YJ", "7SA", "LRW", "XP7"},
    "Ford": {"1FA", "1FM", "1FT", "3FM", "3FA"},
    "Hyundai": {"KMH", "KM8", "5NM", "5NP"},
    "Volkswagen": {"WVW", "WVG", "1V2", "3VW"},
    "BMW": {"WBA", "WBY", "5UX"},
    "Kia": {"KNA", "KND", "5XY"},
    "Volvo": {"YV1", "YV4", "LYV"},
    "Rivian": {"7PD", "7FC"},
    "Polestar": {"LPS", "YSM"},
    "Nissan": {"1N4", "JN1", "JN8", "5N1"},
}


def independent_check_digit(vin: str) -> str:
    total = sum(TRANSLIT[c] * w for c, w in zip(vin, WEIGHTS, strict=True))
    return "X" if total % 11 == 10 else str(total % 11)


@pytest.fixture(scope="module")
def fleet10k() -> list:
    return generate_fleet(10_000, seed=20261126)


def test_ten_thousand_generated_vins_are_all_valid_and_unique(fleet10k: list) -> None:
    vins = [v.vin for v in fleet10k]
    assert len(set(vins)) == 10_000
    invalid = [
        vin
        for vin in vins
        if len(vin) != 17
        or set(vin) & set("IOQ")
        or not set(vin) <= set(TRANSLIT)
        or vin[8] != independent_check_digit(vin)
    ]
    assert invalid == []


def test_every_vin_starts_with_a_real_wmi_of_its_make(fleet10k: list) -> None:
    wrong = [(v.make, v.vin) for v in fleet10k if v.vin[:3] not in KNOWN_WMI[v.make]]
    assert wrong == []


def test_position_ten_encodes_the_vehicles_model_year(fleet10k: list) -> None:
    wrong = [(v.model_year, v.vin) for v in fleet10k if v.vin[9] != YEAR_CODE[v.model_year]]
    assert wrong == []
    assert {v.model_year for v in fleet10k} >= {2020, 2022, 2024, 2026}


def test_a_corrupted_vin_fails_the_independent_check() -> None:
    # Guards the checker itself: changing one character must break the check digit.
    vin = VinFactory(random.Random(1)).make(CATALOGUE[0], 2024)
    corrupted = vin[:12] + ("1" if vin[12] != "1" else "2") + vin[13:]
    assert corrupted[8] != independent_check_digit(corrupted)


def test_the_same_seed_gives_the_same_vins_and_another_seed_different_ones() -> None:
    first = [v.vin for v in generate_fleet(200, seed=5)]
    assert first == [v.vin for v in generate_fleet(200, seed=5)]
    assert first != [v.vin for v in generate_fleet(200, seed=6)]
