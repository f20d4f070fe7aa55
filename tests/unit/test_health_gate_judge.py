"""The health gate's judge: Mann-Whitney p-values against worked examples, cleaning, verdicts."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from fleetota_core.domain.health_gate import (
    MIN_SAMPLES,
    GateVerdict,
    MetricVerdict,
    cap_outliers,
    clean,
    compare,
    judge,
    mann_whitney_greater,
)
from fleetota_core.domain.vehicle_health import HealthReading, Signal, soak_rates


def test_mann_whitney_matches_the_textbook_example_scipy_documents() -> None:
    # Conover's example in scipy.stats.mannwhitneyu's documentation: ages of male and female
    # workers; scipy's asymptotic two-sided p is 0.11134688653314041, so one-sided 0.0556734...
    males, females = [19, 22, 16, 29, 24], [20, 11, 17, 12]
    test = mann_whitney_greater(males, females)
    assert test.u == 17
    assert test.p_value == pytest.approx(0.11134688653314041 / 2, rel=1e-9)


def test_mann_whitney_by_hand_without_ties() -> None:
    # U = 4 * 6 = 24 (every canary value beats every control one); mean 12, variance 4*6*11/12 = 22.
    test = mann_whitney_greater([7, 8, 9, 10], [1, 2, 3, 4, 5, 6])
    assert test.u == 24
    z = (24 - 12 - 0.5) / math.sqrt(22)
    assert test.z == pytest.approx(z)
    assert test.p_value == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)))
    assert test.p_value == pytest.approx(0.00710, abs=1e-4)


def test_mann_whitney_by_hand_with_ties() -> None:
    # Pooled sorted: 0 0 0 | 1 1 | 2 -> ranks 2 2 2 | 4.5 4.5 | 6. Canary [1, 2, 0]: 4.5 + 6 + 2 = 12.5,
    # U = 12.5 - 6 = 6.5. Ties: (27 - 3) + (8 - 2) = 30; variance = 9/12 * (7 - 30/30) = 4.5.
    test = mann_whitney_greater([1, 2, 0], [0, 0, 1])
    assert test.u == 6.5
    assert test.z == pytest.approx((6.5 - 4.5 - 0.5) / math.sqrt(4.5))


def test_rare_events_get_the_exact_p_value_not_the_optimistic_normal_one() -> None:
    # 4 of 200 canary vehicles set a code in the soak, none of 368 control vehicles: the chance that
    # all 4 fall in the canary by luck is C(564, 196) / C(568, 200) = (200*199*198*197) / (568*...*565).
    canary, control = [2.0] * 4 + [0.0] * 196, [0.0] * 368
    exact = (200 * 199 * 198 * 197) / (568 * 567 * 566 * 565)
    assert mann_whitney_greater(canary, control).p_value == pytest.approx(exact, rel=1e-12)
    assert exact > 0.015  # the normal approximation said 0.005: an A/A false pause at alpha 0.01
    assert compare(Signal.DTC, canary, control).verdict is MetricVerdict.PASS


def test_the_exact_p_value_matches_counting_every_split_by_hand() -> None:
    canary, control = [0.0, 0.0, 1.0, 2.5, 1.0], [0.0, 0.0, 0.0, 1.0, 0.0, 3.0]
    pooled = canary + control

    def rank_sum(values: list[float]) -> float:
        ordered = sorted(pooled)
        return sum((ordered.index(v) + 1 + len(ordered) - ordered[::-1].index(v)) / 2 for v in values)

    observed = rank_sum(canary)
    splits = list(itertools.combinations(range(len(pooled)), len(canary)))
    hits = sum(1 for idx in splits if rank_sum([pooled[i] for i in idx]) >= observed - 1e-9)
    assert mann_whitney_greater(canary, control).p_value == pytest.approx(hits / len(splits))


def test_a_worse_control_is_no_evidence_against_the_canary() -> None:
    assert mann_whitney_greater([1, 2, 3], [7, 8, 9, 10]).p_value > 0.9
    assert mann_whitney_greater([0, 0, 0], [0, 0]).p_value == 1.0  # all tied


def test_cleaning_drops_nan_infinite_and_negative_rates_and_caps_one_broken_vehicle() -> None:
    assert clean([1.0, math.nan, -0.5, math.inf, 0.0]) == [1.0, 0.0]
    canary, _ = cap_outliers([1.0] * 99 + [1000.0], [1.0] * 100)
    assert max(canary) < 1000.0
    zeros, _ = cap_outliers([0.0] * 99 + [5.0], [0.0] * 100)
    assert max(zeros) == 5.0  # a cap at zero would erase the only event


def _rates(rng: random.Random, n: int, per_h: float, hours: float = 2.0) -> list[float]:
    """Per-vehicle DTC rates (% per hour) of ``n`` vehicles over ``hours``, events at ``per_h``."""
    out = []
    for _ in range(n):
        events = sum(1 for _ in range(int(hours * 60)) if rng.random() < per_h / 60)
        out.append(events / hours * 100)
    return out


def test_a_canary_with_ten_times_the_fault_rate_is_high_with_its_evidence() -> None:
    rng = random.Random(3)
    result = compare(Signal.DTC, _rates(rng, 120, 0.05), _rates(rng, 400, 0.005))
    assert result.verdict is MetricVerdict.HIGH
    assert result.p_value is not None and result.p_value < 0.01
    text = result.evidence()
    assert text.startswith("canary DTC rate ") and "(n=120) vs control" in text and "(n=400)" in text


def test_a_tiny_but_significant_difference_does_not_fail_the_metric() -> None:
    canary = [0.2] * 500 + [0.3] * 500
    control = [0.2] * 600 + [0.3] * 400  # significant at this size, but 0.01 points per hour
    result = compare(Signal.PARKED_DRAIN, canary, control)
    assert result.p_value is not None and result.p_value < 0.01
    assert result.verdict is MetricVerdict.PASS


def test_too_few_vehicles_is_insufficient_not_a_pass() -> None:
    few = {s: [0.0] * (MIN_SAMPLES - 1) for s in Signal}
    many = {s: [0.0] * 100 for s in Signal}
    judgement = judge(few, many)
    assert judgement.verdict is GateVerdict.INSUFFICIENT
    assert f"canary n={MIN_SAMPLES - 1}" in judgement.evidence


def test_equal_groups_pass_one_bad_signal_is_marginal_two_fail() -> None:
    rng = random.Random(5)
    same = {s: [rng.uniform(0, 1) for _ in range(200)] for s in Signal}
    assert judge(same, same).verdict is GateVerdict.PASS
    worse = dict(same, dtc=[v + 5 for v in same[Signal.DTC]])
    assert judge(worse, same).verdict is GateVerdict.MARGINAL
    worse[Signal.REBOOTS] = [v + 5 for v in same[Signal.REBOOTS]]
    judgement = judge(worse, same)
    assert (judgement.verdict, judgement.score) == (GateVerdict.FAIL, 50.0)
    assert "DTC rate" in judgement.evidence and "unexpected reboots" in judgement.evidence


def test_no_parked_time_leaves_parked_drain_out_of_the_score() -> None:
    rng = random.Random(6)
    same = {s: [rng.uniform(0, 1) for _ in range(50)] for s in Signal}
    canary = dict(same, parked_drain=[])
    judgement = judge(canary, same)
    assert (judgement.verdict, judgement.score) == (GateVerdict.PASS, 100.0)


def test_soak_rates_come_from_counter_differences_over_the_vehicles_own_time() -> None:
    start = HealthReading(3600, 2, 0, 5, 1800, 0.1)
    end = HealthReading(3600 + 7200, 3, 1, 5, 1800 + 3600, 0.4)
    rates = soak_rates(start, end)
    assert rates[Signal.DTC] == pytest.approx(50.0)  # one code in two hours: 50 % per hour
    assert rates[Signal.REBOOTS] == pytest.approx(50.0)
    assert rates[Signal.LINK_DROPS] == 0.0
    assert rates[Signal.PARKED_DRAIN] == pytest.approx(0.3)
    short = soak_rates(start, HealthReading(3700, 2, 0, 5, 1800, 0.1))
    assert all(math.isnan(v) for v in short.values())  # 100 s is too little to say anything
