"""Selection for a service level: the rule, the knee without limits, and the shortfall when nothing qualifies."""

from __future__ import annotations

import pandas as pd
import pytest

from nas.analysis.pareto import knee_point
from nas.analysis.selection import Choice, ServiceLevel, Shortfall, select_point

OBJECTIVES = ("accuracy", "latency_ms")
# A front: faster points are less accurate; RAM does not follow latency.
FRONT = pd.DataFrame(
    {
        "number": [3, 7, 11, 20],
        "accuracy": [0.90, 0.93, 0.95, 0.97],
        "latency_ms": [0.5, 1.0, 2.0, 4.0],
        "ram_bytes": [40_000.0, 10_000.0, 30_000.0, 20_000.0],
    }
)


def test_the_most_accurate_point_meeting_every_limit_is_chosen():
    choice = select_point(FRONT, ServiceLevel(limits={"latency_ms": 2.5}), OBJECTIVES)
    assert isinstance(choice, Choice) and choice.number == 11
    assert "--max-latency-ms 2.5" in choice.reason and "3 of 4" in choice.reason
    both = select_point(FRONT, ServiceLevel(limits={"latency_ms": 2.5, "ram_bytes": 25_000}), OBJECTIVES)
    assert isinstance(both, Choice) and both.number == 7
    floor = select_point(FRONT, ServiceLevel(limits={"latency_ms": 4.0}, min_accuracy=0.96), OBJECTIVES)
    assert isinstance(floor, Choice) and floor.number == 20


def test_without_limits_the_knee_is_chosen():
    choice = select_point(FRONT, ServiceLevel(), OBJECTIVES)
    assert isinstance(choice, Choice) and choice.number == knee_point(FRONT, OBJECTIVES)
    assert "knee" in choice.reason


def test_a_limit_no_point_meets_is_named_as_binding_with_its_excess():
    result = select_point(FRONT, ServiceLevel(limits={"latency_ms": 0.4}, min_accuracy=0.9), OBJECTIVES)
    assert isinstance(result, Shortfall) and result.closest is None
    assert result.binding == {"latency_ms": pytest.approx(0.25)}  # the fastest point, 0.5 ms, is 25% over
    assert "--max-latency-ms 0.4 (over by 25.0%)" in result.reason


def test_limits_that_hold_alone_but_not_together_name_the_closest_point():
    # Accuracy >= 0.95 needs trial 11 or 20; RAM <= 15 KB only trial 7 meets. Trial 7 misses least (2.1% short
    # of the accuracy floor; trial 20 is 33% over the RAM limit).
    result = select_point(FRONT, ServiceLevel(limits={"ram_bytes": 15_000}, min_accuracy=0.95), OBJECTIVES)
    assert isinstance(result, Shortfall)
    assert result.closest == 7 and result.binding == {"accuracy": pytest.approx(0.02 / 0.95)}
    assert "not together" in result.reason and "--min-accuracy 0.95 (short by 2.1%)" in result.reason


def test_an_empty_front_is_a_shortfall():
    result = select_point(FRONT.iloc[:0], ServiceLevel(limits={"latency_ms": 1.0}), OBJECTIVES)
    assert isinstance(result, Shortfall) and "no feasible front point" in result.reason
