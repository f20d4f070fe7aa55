"""The health gate's judge: canary vs control per signal, after Spinnaker Kayenta's default judge.

1. Validate: each group needs ``MIN_SAMPLES`` vehicles with data, else the verdict is INSUFFICIENT
   (the gate keeps waiting; it never passes on missing data).
2. Clean: drop NaN, infinite and negative rates; cap both groups at the pooled 99th percentile.
3. Compare each signal with a one-sided Mann-Whitney U test (only a worse canary counts), normal
   approximation with tie and continuity correction, or the exact permutation p-value when the
   signal is a rare event (nearly every vehicle at zero); a signal is HIGH when p < ``ALPHA`` *and* the
   canary's mean is worse by the signal's minimum increase and ratio (domain/vehicle_health.py), so
   a tiny difference on a large fleet does not stop a rollout.
4. Score: 100 x the share of signals with data that pass; PASS at ``PASS_SCORE`` or more, MARGINAL
   at ``MARGINAL_SCORE`` or more, else FAIL. Only PASS opens the next wave.

Pure Python on purpose: the update manager's Lambda carries no numpy or scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime  # noqa: TC003 - pydantic needs it at runtime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from fleetota_core.domain.vehicle_health import SIGNALS, Signal

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

ALPHA = 0.01
MIN_SAMPLES = 10
PASS_SCORE = 95.0
MARGINAL_SCORE = 75.0
OUTLIER_QUANTILE = 0.99
EXACT_LIMIT = 60  # values above the lowest tie block, up to which the p-value is exact
# Signals every vehicle with observed time has; parked drain needs parked time, so it may lack data
# without making the whole comparison insufficient.
REQUIRED = (Signal.DTC, Signal.REBOOTS, Signal.LINK_DROPS)


class MetricVerdict(StrEnum):
    PASS = "PASS"
    HIGH = "HIGH"  # the canary is significantly and materially worse
    NODATA = "NODATA"


class GateVerdict(StrEnum):
    PASS = "PASS"
    MARGINAL = "MARGINAL"
    FAIL = "FAIL"
    INSUFFICIENT = "INSUFFICIENT"


@dataclass(frozen=True)
class MannWhitney:
    u: float  # the canary's U statistic
    z: float
    p_value: float  # one-sided: P(a canary this much higher | no difference)


def _midranks(pooled: list[tuple[float, bool]]) -> tuple[list[int], float]:
    """Doubled midranks (integers) of the sorted pooled values, and the tie term sum(t^3 - t)."""
    ranks: list[int] = []
    ties, i, total = 0.0, 0, len(pooled)
    while i < total:
        j = i
        while j + 1 < total and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        t = j - i + 1
        ranks.extend([i + j + 2] * t)  # 2 x the average of ranks i+1 .. j+1
        ties += t**3 - t
        i = j + 1
    return ranks, ties


def mann_whitney_greater(canary: Sequence[float], control: Sequence[float]) -> MannWhitney:
    """One-sided Mann-Whitney U test that ``canary`` tends to be greater than ``control``.

    Normal approximation with the tie correction of the variance and a continuity correction of
    0.5 (as scipy's ``mannwhitneyu(..., alternative="greater", method="asymptotic")``). When at
    least half the values, and all but at most ``EXACT_LIMIT``, are tied at the lowest value (rare
    events: most vehicles set no fault code in a soak) the approximation is too optimistic, and the
    p-value is the exact permutation probability instead (:func:`exact_p_value`).
    """
    n1, n2 = len(canary), len(control)
    if n1 == 0 or n2 == 0:
        raise ValueError("both groups need at least one value")
    pooled = sorted([(v, True) for v in canary] + [(v, False) for v in control], key=lambda p: p[0])
    total = n1 + n2
    ranks, ties = _midranks(pooled)
    rank_sum2 = sum(r for r, (_, is_canary) in zip(ranks, pooled, strict=True) if is_canary)
    u = rank_sum2 / 2 - n1 * (n1 + 1) / 2
    variance = n1 * n2 / 12 * ((total + 1) - ties / (total * (total - 1))) if total > 1 else 0.0
    if variance <= 0:
        return MannWhitney(u, 0.0, 1.0)  # every value tied: no evidence either way
    z = (u - n1 * n2 / 2 - 0.5) / math.sqrt(variance)
    above = sum(1 for v, _ in pooled if v != pooled[0][0])
    if above <= EXACT_LIMIT and 2 * above <= total:
        return MannWhitney(u, z, exact_p_value(ranks, n1, rank_sum2))
    return MannWhitney(u, z, 0.5 * math.erfc(z / math.sqrt(2)))


def exact_p_value(ranks: list[int], n1: int, observed: int) -> float:
    """P(a random ``n1`` of the pooled values have a doubled rank sum >= ``observed``), exactly.

    ``ranks`` are the pooled doubled midranks, sorted, the lowest block first. Every split of the
    pool is equally likely under no difference; the splits are counted by how many values of the
    lowest block the canary takes (binomial coefficients) and, by dynamic programming, by the rank
    sum of the values above it, of which there are few.
    """
    low = ranks[0]
    block = sum(1 for r in ranks if r == low)
    above = ranks[block:]
    # ways[k][s]: subsets of k values from ``above`` whose doubled ranks sum to s.
    ways: list[dict[int, int]] = [{0: 1}] + [{} for _ in above]
    for seen, rank in enumerate(above):
        for k in range(min(seen, n1 - 1), -1, -1):
            target = ways[k + 1]
            for s, count in ways[k].items():
                target[s + rank] = target.get(s + rank, 0) + count
    hits = 0
    for k, sums in enumerate(ways):
        rest = n1 - k
        if rest < 0 or rest > block:
            continue
        need = observed - rest * low
        hits += math.comb(block, rest) * sum(count for s, count in sums.items() if s >= need)
    return min(1.0, hits / math.comb(len(ranks), n1))


def clean(values: Sequence[float]) -> list[float]:
    """Rates that can be compared: finite and not negative (a reset counter gives a negative one)."""
    return [v for v in values if math.isfinite(v) and v >= 0]


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def cap_outliers(canary: list[float], control: list[float]) -> tuple[list[float], list[float]]:
    """Cap both groups at their pooled 99th percentile: one broken vehicle cannot swing a mean."""
    cap = quantile(canary + control, OUTLIER_QUANTILE)
    if cap <= 0:
        return canary, control  # mostly zeros: a cap at zero would erase every event
    return [min(v, cap) for v in canary], [min(v, cap) for v in control]


class MetricResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    signal: Signal
    verdict: MetricVerdict
    canary_n: int
    control_n: int
    canary_mean: float | None = None
    control_mean: float | None = None
    p_value: float | None = None

    def evidence(self) -> str:
        info = SIGNALS[self.signal]
        return (
            f"canary {info.label} {_num(self.canary_mean)} {info.unit} (n={self.canary_n}) vs control "
            f"{_num(self.control_mean)} {info.unit} (n={self.control_n}), {_p(self.p_value)}"
        )


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.2f}"


def _p(p: float | None) -> str:
    if p is None:
        return "p n/a"
    for bound in (0.001, 0.01):
        if p < bound:
            return f"p<{bound:g}"
    return f"p={p:.2f}"


def compare(signal: Signal, canary: Sequence[float], control: Sequence[float]) -> MetricResult:
    """One signal's verdict over the two groups' per-vehicle rates."""
    c, k = clean(canary), clean(control)
    if len(c) < MIN_SAMPLES or len(k) < MIN_SAMPLES:
        return MetricResult(signal=signal, verdict=MetricVerdict.NODATA, canary_n=len(c), control_n=len(k))
    c, k = cap_outliers(c, k)
    canary_mean, control_mean = sum(c) / len(c), sum(k) / len(k)
    test = mann_whitney_greater(c, k)
    info = SIGNALS[signal]
    worse = (
        test.p_value < ALPHA
        and canary_mean - control_mean >= info.min_increase
        and canary_mean >= info.min_ratio * control_mean
    )
    return MetricResult(
        signal=signal,
        verdict=MetricVerdict.HIGH if worse else MetricVerdict.PASS,
        canary_n=len(c),
        control_n=len(k),
        canary_mean=canary_mean,
        control_mean=control_mean,
        p_value=test.p_value,
    )


@dataclass(frozen=True)
class Judgement:
    verdict: GateVerdict
    score: float | None
    metrics: tuple[MetricResult, ...]

    @property
    def evidence(self) -> str:
        high = [m.evidence() for m in self.metrics if m.verdict is MetricVerdict.HIGH]
        if high:
            return "; ".join(high)
        if self.verdict is GateVerdict.INSUFFICIENT:
            short = [m for m in self.metrics if m.signal in REQUIRED and m.verdict is MetricVerdict.NODATA]
            m = short[0] if short else self.metrics[0]
            return (
                f"insufficient data: canary n={m.canary_n}, control n={m.control_n} "
                f"(at least {MIN_SAMPLES} vehicles with data in each group)"
            )
        return "no signal worse in the canary"


def judge(canary: Mapping[Signal, Sequence[float]], control: Mapping[Signal, Sequence[float]]) -> Judgement:
    """Compare every signal and aggregate the results into a score and a verdict."""
    metrics = tuple(compare(s, canary.get(s, ()), control.get(s, ())) for s in Signal)
    with_data = [m for m in metrics if m.verdict is not MetricVerdict.NODATA]
    if any(m.verdict is MetricVerdict.NODATA for m in metrics if m.signal in REQUIRED) or not with_data:
        return Judgement(GateVerdict.INSUFFICIENT, None, metrics)
    score = 100.0 * sum(1 for m in with_data if m.verdict is MetricVerdict.PASS) / len(with_data)
    if score >= PASS_SCORE:
        verdict = GateVerdict.PASS
    elif score >= MARGINAL_SCORE:
        verdict = GateVerdict.MARGINAL
    else:
        verdict = GateVerdict.FAIL
    return Judgement(verdict, score, metrics)


class GatePhase(StrEnum):
    SOAKING = "SOAKING"  # the wave's canary runs; the next wave waits
    WAITING_FOR_DATA = "WAITING_FOR_DATA"  # the soak ended with too few vehicles reporting
    PASSED = "PASSED"
    FAILED = "FAILED"  # paused the campaign (regression, or no data in time)
    OVERRIDDEN = "OVERRIDDEN"  # an operator resumed the campaign the gate paused


class GateStatus(BaseModel):
    """The gate of one wave, as stored on the campaign for the dashboard and the CLI."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    wave: int  # 0-based, as ``Campaign.current_wave``
    phase: GatePhase
    soak_started_at: datetime
    soak_ends_at: datetime
    give_up_at: datetime  # insufficient data until then pauses the campaign
    canary_vehicles: int
    control_vehicles: int
    verdict: GateVerdict | None = None
    score: float | None = None
    metrics: tuple[MetricResult, ...] = ()
    evidence: str = ""
    checked_at: datetime | None = None

    def summary(self) -> str:
        head = f"wave {self.wave + 1} health gate {self.phase.value}"
        if self.verdict is not None:
            score = "" if self.score is None else f", score {self.score:.0f}"
            head += f" ({self.verdict.value}{score})"
        return f"{head}: {self.evidence}" if self.evidence else head
