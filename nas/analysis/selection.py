"""Selection for a service level: the most accurate front point that meets every limit a deployment sets.

Limits are upper bounds on cost terms (latency, RAM, energy, flash, worst-class drop, ...) and a lower bound on
validation accuracy (never test accuracy: the test split only reports). With no limit at all, the knee of the
front is chosen. When nothing qualifies, the shortfall names each limit that even the best front point misses
(a limit binding on its own) or, when every limit can be met but not together, the point that comes closest
and what it misses, each by how much.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nas.analysis.pareto import knee_point
from nas.objectives import ACCURACY, term


@dataclass(frozen=True, kw_only=True)
class ServiceLevel:
    """What a deployment needs: upper limits per cost term (raw units) and a minimum validation accuracy."""

    limits: dict[str, float] = field(default_factory=dict)
    min_accuracy: float | None = None

    @property
    def empty(self) -> bool:
        """Whether no limit is set (the knee is chosen)."""
        return not self.limits and self.min_accuracy is None

    def misses(self, row: pd.Series) -> dict[str, float]:
        """Per limit ``row`` misses, by how much relative to the limit (positive: over a cost limit or under
        the accuracy floor)."""
        found = {}
        for name, limit in self.limits.items():
            value = float(row[name]) if pd.notna(row.get(name)) else np.inf
            if value > limit:
                found[name] = (value - limit) / limit if limit > 0 else np.inf
        if self.min_accuracy is not None and float(row[ACCURACY]) < self.min_accuracy:
            found[ACCURACY] = (self.min_accuracy - float(row[ACCURACY])) / self.min_accuracy
        return found


@dataclass(frozen=True, kw_only=True)
class Choice:
    """The chosen front point and why."""

    number: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class Shortfall:
    """Nothing qualifies: the limits that bind and by how much."""

    binding: dict[str, float]  # limit name -> relative miss of the closest point (or of the best on that limit)
    closest: int | None
    reason: str


def select_point(
    front: pd.DataFrame, level: ServiceLevel, objectives: Sequence[str], *, baseline_accuracy: float | None = None
) -> Choice | Shortfall:
    """The most accurate member of ``front`` meeting ``level`` (the cheapest first cost term among equals), the
    knee when ``level`` is empty (among members near ``baseline_accuracy``, ``knee_point``), or the shortfall."""
    if front.empty:
        return Shortfall(binding={}, closest=None, reason="the study has no feasible front point yet")
    if level.empty:
        number = knee_point(front, objectives, baseline_accuracy=baseline_accuracy)
        return Choice(number=number, reason=f"no service level given: trial {number} is the knee of the front")
    misses = [level.misses(row) for _, row in front.iterrows()]
    qualifying = front[[not m for m in misses]]
    if not qualifying.empty:
        cost = next((o for o in objectives if o != ACCURACY), None)
        order = [ACCURACY, *([cost] if cost else [])]
        best = qualifying.sort_values(order, ascending=[False, True][: len(order)]).iloc[0]
        number = int(best["number"])
        reason = (
            f"trial {number} is the most accurate of the {len(qualifying)} of {len(front)} front points that meet "
            f"{describe_level(level)} (validation accuracy {float(best[ACCURACY]):.4f})"
        )
        return Choice(number=number, reason=reason)
    return _shortfall(front, level, misses)


def _shortfall(front: pd.DataFrame, level: ServiceLevel, misses: list[dict[str, float]]) -> Shortfall:
    """Which limits bind: those no front point meets on its own, else those the closest point misses."""
    alone = {}
    for name in [*level.limits, *([ACCURACY] if level.min_accuracy is not None else [])]:
        single = [m.get(name, 0.0) for m in misses]
        if min(single) > 0:
            alone[name] = float(min(single))
    if alone:
        parts = [_miss_text(name, excess, level) for name, excess in alone.items()]
        return Shortfall(binding=alone, closest=None, reason="no front point meets " + "; ".join(parts))
    total = [sum(m.values()) for m in misses]
    index = int(np.argmin(total))
    closest = int(front["number"].iloc[index])
    parts = [_miss_text(name, excess, level) for name, excess in misses[index].items()]
    reason = f"every limit can be met, but not together; the closest, trial {closest}, misses " + "; ".join(parts)
    return Shortfall(binding=misses[index], closest=closest, reason=reason)


def _miss_text(name: str, excess: float, level: ServiceLevel) -> str:
    if name == ACCURACY:
        return f"--min-accuracy {level.min_accuracy:g} (short by {excess:.1%})"
    figure = term(name)
    return f"{figure.budget_flag} {figure.budget_display(level.limits[name]):g} (over by {excess:.1%})"


def describe_level(level: ServiceLevel) -> str:
    """The service level as the flags that set it."""
    parts = [f"{term(n).budget_flag} {term(n).budget_display(limit):g}" for n, limit in level.limits.items()]
    if level.min_accuracy is not None:
        parts.append(f"--min-accuracy {level.min_accuracy:g}")
    return ", ".join(parts)
