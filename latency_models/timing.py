"""The timing protocol: how one model's latency is measured in the LiteRT interpreter.

Small models run in microseconds on a shared, noisy machine, so one figure comes from many invokes:
``warmup`` invokes first (caches, lazy delegate preparation), then ``rounds`` rounds of ``invokes_per_round``
invokes each, every round timed as a whole and divided (a single microsecond invoke is below the timer's
useful resolution); rounds further than ``OUTLIER_MADS`` median absolute deviations above the median are
rejected (another process took the core; the deviation is floored at 2% of the median), and the median
and quartiles of the rest are reported. The thread
count is fixed per table. The noise floor is the relative difference between two full measurements of the
same model, taken one after the other.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from latency_models.litert import load_interpreter, quantize_input
from latency_models.table import Measurement

OUTLIER_MADS = 5.0
MAD_FLOOR = 0.02  # of the median: rounds of a very steady model are not outliers for a 1% wobble


@dataclass(frozen=True, kw_only=True)
class TimingProtocol:
    """How many invokes make one measurement."""

    warmup: int = 20
    rounds: int = 30
    invokes_per_round: int = 10
    threads: int = 1

    def describe(self) -> dict[str, object]:
        """The protocol as recorded in a table's provenance."""
        return {
            **asdict(self),
            "statistic": "median of per-invoke round means",
            "outliers": f"rounds > median + {OUTLIER_MADS:g} MAD rejected",
        }


def time_invokes(content: bytes, *, delegate: str, protocol: TimingProtocol, seed: int = 0) -> Measurement:
    """Measures one model: per-invoke latency in ms (median and quartiles of the kept rounds)."""
    interpreter = load_interpreter(content, delegate=delegate, threads=protocol.threads)
    detail = interpreter.get_input_details()[0]
    example = np.random.default_rng(seed).random(detail["shape"], np.float32)
    interpreter.set_tensor(detail["index"], quantize_input(example, detail))
    for _ in range(protocol.warmup):
        interpreter.invoke()
    rounds = np.empty(protocol.rounds)
    for index in range(protocol.rounds):
        start = time.perf_counter()
        for _ in range(protocol.invokes_per_round):
            interpreter.invoke()
        rounds[index] = (time.perf_counter() - start) * 1000 / protocol.invokes_per_round
    return summarize(rounds)


def summarize(samples_ms: np.ndarray) -> Measurement:
    """Median and quartiles of ``samples_ms`` after rejecting high outliers."""
    median = float(np.median(samples_ms))
    mad = float(np.median(np.abs(samples_ms - median)))
    kept = samples_ms[samples_ms <= median + OUTLIER_MADS * max(mad, MAD_FLOOR * median)]
    p25, p50, p75 = np.percentile(kept, [25, 50, 75])
    return Measurement(
        median_ms=float(p50),
        p25_ms=float(p25),
        p75_ms=float(p75),
        runs=int(kept.size),
        rejected=int(samples_ms.size - kept.size),
    )


def relative_difference(first: Measurement, second: Measurement) -> float:
    """|a - b| / mean(a, b) of two medians (0 when both are 0)."""
    mean = (first.median_ms + second.median_ms) / 2
    return abs(first.median_ms - second.median_ms) / mean if mean > 0 else 0.0
