"""``nas compare STUDY_A STUDY_B``: whether B's front is as good as A's on one device, to gate a change.

Both fronts are put in one space: every objective turned into a loss (accuracy into 1 - accuracy) and scaled
to [0, 1] over the two fronts together, with one shared reference point just beyond the worst value of either
(10% of the range). The hypervolume each front dominates in that space is comparable; B regresses when its
hypervolume falls short of A's by more than the tolerance. The points of each front that the other dominates
are counted too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nas.objectives import directions

REFERENCE_MARGIN = 0.1


def hypervolume(points: np.ndarray, reference: Sequence[float] | np.ndarray) -> float:
    """The volume dominated by ``points`` (n x d losses, minimized) and bounded by ``reference``; exact, by
    slicing along the first objective (fine for the tens of points a front holds)."""
    bound = np.asarray(reference, float)
    inside = np.asarray(points, float).reshape(-1, len(bound))
    inside = inside[(inside < bound).all(axis=1)]
    if len(inside) == 0:
        return 0.0
    if len(bound) == 1:
        return float(bound[0] - inside[:, 0].min())
    inside = inside[np.argsort(inside[:, 0], kind="stable")]
    volume = 0.0
    for index, point in enumerate(inside):
        upper = inside[index + 1, 0] if index + 1 < len(inside) else bound[0]
        if upper > point[0]:
            volume += (upper - point[0]) * hypervolume(inside[: index + 1, 1:], bound[1:])
    return float(volume)


def shared_scale(*losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low, span) that put loss arrays in one space: the minimum and range of all of them together (1 where an
    objective does not vary)."""
    both = np.vstack(losses)
    if len(both) == 0:
        raise ValueError("no points to scale")
    span = np.ptp(both, axis=0)
    return both.min(axis=0), np.where(span > 0, span, 1.0)


def scaled_hypervolume(losses: np.ndarray, low: np.ndarray, span: np.ndarray) -> float:
    """The hypervolume of ``losses`` in the space ``shared_scale`` gave, the reference point ``REFERENCE_MARGIN``
    beyond the worst value on every objective."""
    scaled = (np.asarray(losses, float).reshape(-1, len(low)) - low) / span
    return hypervolume(scaled, np.full(len(low), 1.0 + REFERENCE_MARGIN))


def dominated_count(points: np.ndarray, by: np.ndarray) -> int:
    """How many of ``points`` some point of ``by`` dominates (no worse everywhere, better somewhere; losses)."""
    count = 0
    for point in points:
        no_worse = (by <= point).all(axis=1)
        better = (by < point).any(axis=1)
        count += bool((no_worse & better).any())
    return count


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """Two fronts in one normalized space."""

    hypervolume_a: float
    hypervolume_b: float
    b_points_dominated_by_a: int
    a_points_dominated_by_b: int
    points_a: int
    points_b: int
    tolerance: float

    @property
    def regressed(self) -> bool:
        """Whether B's hypervolume falls short of A's by more than the tolerance."""
        return self.hypervolume_b < self.hypervolume_a * (1 - self.tolerance)


def compare_fronts(
    front_a: pd.DataFrame, front_b: pd.DataFrame, objectives: Sequence[str], tolerance: float = 0.01
) -> Comparison:
    """The comparison of two fronts over ``objectives``."""
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions(objectives)])
    losses_a = front_a[list(objectives)].to_numpy(float) * signs
    losses_b = front_b[list(objectives)].to_numpy(float) * signs
    low, span = shared_scale(losses_a, losses_b)
    return Comparison(
        hypervolume_a=scaled_hypervolume(losses_a, low, span),
        hypervolume_b=scaled_hypervolume(losses_b, low, span),
        b_points_dominated_by_a=dominated_count(losses_b, losses_a),
        a_points_dominated_by_b=dominated_count(losses_a, losses_b),
        points_a=len(losses_a),
        points_b=len(losses_b),
        tolerance=tolerance,
    )
