"""The telemetry processor's lag histogram, in plain Python since numpy left the Lambda packages."""

from __future__ import annotations

import random
from collections import Counter

from fleetota_core.services.ingest.telemetry_object import LAG_EDGES_MS, lag_bucket, lag_histogram


def test_many_lags_land_in_the_same_buckets_as_one_lag_at_a_time_edges_included() -> None:
    rng = random.Random(16)
    lags = [float(edge) for edge in LAG_EDGES_MS] + [edge + 0.001 for edge in LAG_EDGES_MS]
    lags += [-50.0, 0.0, 1e9] + [rng.uniform(-1000, 400_000) for _ in range(2000)]
    rng.shuffle(lags)

    assert lag_histogram(lags) == dict(Counter(lag_bucket(lag) for lag in lags))
    assert sum(lag_histogram(lags).values()) == len(lags)
    assert lag_histogram([100.0, 100.5]) == {"lag_le_100": 1, "lag_le_250": 1}
    assert lag_histogram([]) == {}
