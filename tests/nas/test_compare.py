"""Comparing two fronts: the hypervolume against hand-computed cases, domination counts, the regression gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nas.analysis.compare import compare_fronts, dominated_count, hypervolume
from nas.analysis.pareto import hypervolume_2d


def test_hypervolume_matches_hand_computed_areas_and_volumes():
    # Three rectangles to (4, 4): 3x1 + 2x1 + 1x1.
    assert hypervolume(np.array([[1, 3], [2, 2], [3, 1]]), (4, 4)) == pytest.approx(6.0)
    assert hypervolume(np.array([[0, 0, 0]]), (1, 2, 3)) == pytest.approx(6.0)
    # Boxes 2x2x1 and 1x1x2 to (2, 2, 2) overlapping in a unit cube: 4 + 2 - 1.
    assert hypervolume(np.array([[0, 0, 1], [1, 1, 0]]), (2, 2, 2)) == pytest.approx(5.0)
    assert hypervolume(np.array([[5, 5]]), (4, 4)) == 0.0  # beyond the reference: nothing
    rng = np.random.default_rng(0)
    points = rng.random((12, 2))
    assert hypervolume(points, (1.2, 1.3)) == pytest.approx(hypervolume_2d(points, (1.2, 1.3)))


def test_domination_counts():
    a = np.array([[1.0, 1.0], [0.5, 2.0]])
    b = np.array([[1.0, 1.5], [0.4, 3.0], [1.0, 1.0]])
    assert dominated_count(b, a) == 1  # only (1, 1.5); (1, 1) ties, (0.4, 3) is better in one
    assert dominated_count(a, b) == 0


def test_a_worse_front_regresses_and_an_equal_one_does_not():
    a = pd.DataFrame({"accuracy": [0.90, 0.95, 0.97], "latency_ms": [1.0, 2.0, 4.0]})
    worse = pd.DataFrame({"accuracy": [0.88, 0.94], "latency_ms": [1.5, 3.0]})
    result = compare_fronts(a, worse, ("accuracy", "latency_ms"))
    assert result.regressed and result.hypervolume_b < result.hypervolume_a
    assert result.b_points_dominated_by_a == 2 and result.a_points_dominated_by_b == 0
    same = compare_fronts(a, a.copy(), ("accuracy", "latency_ms"))
    assert not same.regressed and same.hypervolume_a == same.hypervolume_b
    better = compare_fronts(worse, a, ("accuracy", "latency_ms"))
    assert not better.regressed and better.a_points_dominated_by_b == 2
