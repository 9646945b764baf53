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

from dataclasses import asdict, dataclass

import numpy as np

from latency_models.kit_runner import OUTLIER_MADS, round_means, set_random_input
from latency_models.kit_runner import summarize as summarize_rounds
from latency_models.runtimes.litert.interpreter import load_interpreter
from latency_models.table import Measurement


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
    """Measures one model: per-invoke latency in ms (median and quartiles of the kept rounds).

    The statistics are the kit runner's own (``kit_runner``), so a device timed with a kit and this host timed
    by a profile are measured alike."""
    interpreter = load_interpreter(content, delegate=delegate, threads=protocol.threads)
    set_random_input(interpreter, seed)
    means = round_means(
        interpreter, warmup=protocol.warmup, rounds=protocol.rounds, invokes_per_round=protocol.invokes_per_round
    )
    return summarize(means)


def summarize(samples_ms: np.ndarray) -> Measurement:
    """Median and quartiles of ``samples_ms`` after rejecting high outliers."""
    return Measurement(**summarize_rounds(samples_ms))


def relative_difference(first: Measurement, second: Measurement) -> float:
    """|a - b| / mean(a, b) of two medians (0 when both are 0)."""
    mean = (first.median_ms + second.median_ms) / 2
    return abs(first.median_ms - second.median_ms) / mean if mean > 0 else 0.0
