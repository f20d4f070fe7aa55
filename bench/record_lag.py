"""Per-record lag, record ``ts`` -> stored state, split into on-time and store-and-forward readings.

The ledger's lag histogram mixes both kinds. This probe wraps the processor's functions in the
bench process (the LocalRuntime runs the handler there): ``prepare`` notes each record's ``ts`` and
kind, and when ``commit_outcomes`` has committed the invocation's objects (vehicle states written
before, ledger then) the lag is taken.

A record is *forwarded* (store and forward, late by design) when its object also holds a newer
reading of the same vehicle: an online vehicle uploads one new reading per interval, and a vehicle
back from an outage sends its held readings together with its new one. Everything else is *on
time*. The rule errs towards on time (a held backlog split across two objects counts as on time),
so it never flatters the on-time figure.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetota_core.services.ingest import batch as ingest_batch
from fleetota_core.services.ingest import telemetry_object as ingest

if TYPE_CHECKING:
    from collections.abc import Callable


WINDOW_S = 30


class RecordLagProbe:
    """Collects (processed wall time, lag s, on time) per stored record while installed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.local = threading.local()
        self.processed_at: list[float] = []
        self.lag_s: list[float] = []
        self.on_time: list[bool] = []
        self.recording = False
        self._originals: tuple[Callable[..., Any], ...] | None = None

    def install(self) -> None:
        prepare = ingest.prepare
        process_object, commit_outcomes = ingest_batch.process_object, ingest_batch.commit_outcomes
        awaiting: dict[int, tuple[list[float], list[bool]]] = {}

        def probed_prepare(decoded: Any, now: Any) -> Any:
            prepared = prepare(decoded, now)
            newest = prepared.newest
            self.local.pending = (
                [r.ts.timestamp() for r in decoded.records],
                [newest[r.vin] is r for r in decoded.records],
            )
            return prepared

        def probed_process_object(*args: Any, **kwargs: Any) -> Any:
            self.local.pending = None
            outcome = process_object(*args, **kwargs)
            pending, self.local.pending = self.local.pending, None
            if pending is not None:
                with self.lock:
                    awaiting[id(outcome)] = pending
            return outcome

        def probed_commit_outcomes(outcomes: list[Any], *args: Any, **kwargs: Any) -> Any:
            # The lag ends when the invocation's objects are committed (states written before).
            try:
                result = commit_outcomes(outcomes, *args, **kwargs)
            except BaseException:
                with self.lock:
                    for outcome in outcomes:
                        awaiting.pop(id(outcome), None)
                raise
            done = time.time()
            with self.lock:
                for outcome in outcomes:
                    pending = awaiting.pop(id(outcome), None)
                    if pending is None or not self.recording or outcome.duplicate:
                        continue
                    ts, on_time = pending
                    self.processed_at.extend([done] * len(ts))
                    self.lag_s.extend(done - t for t in ts)
                    self.on_time.extend(on_time)
            return result

        self._originals = (prepare, process_object, commit_outcomes)
        ingest.prepare = probed_prepare
        ingest_batch.process_object = probed_process_object
        ingest_batch.commit_outcomes = probed_commit_outcomes

    def uninstall(self) -> None:
        if self._originals is not None:
            ingest.prepare, ingest_batch.process_object, ingest_batch.commit_outcomes = self._originals
            self._originals = None

    def summary(self, since: float = 0.0) -> dict[str, Any]:
        """p50/p95/mean/max lag (s) of on-time, forwarded and all records processed at or after ``since``."""
        with self.lock:
            at = np.array(self.processed_at)
            lag = np.array(self.lag_s)
            on_time = np.array(self.on_time, dtype=bool)
        keep = at >= since
        at, lag, on_time = at[keep], lag[keep], on_time[keep]
        window = (at - since) // WINDOW_S
        return {
            "on_time": _stats(lag[on_time]),
            "forwarded": _stats(lag[~on_time]),
            "all": _stats(lag),
            # Where in the run the tail is: on-time p95 by window of processing time.
            f"on_time_p95_by_{WINDOW_S}s": [
                {"from_s": int(w * WINDOW_S), **_stats(lag[on_time & (window == w)])}
                for w in np.unique(window[on_time])
            ],
        }


def _stats(lag: np.ndarray) -> dict[str, Any]:
    if not len(lag):
        return {"records": 0}
    p50, p95, p99 = np.percentile(lag, [50, 95, 99])
    return {
        "records": len(lag),
        "p50_s": round(float(p50), 2),
        "p95_s": round(float(p95), 2),
        "p99_s": round(float(p99), 2),
        "mean_s": round(float(lag.mean()), 2),
        "max_s": round(float(lag.max()), 2),
    }
