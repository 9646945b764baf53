"""A study beside its baselines: every baseline point costed on the study's device, and whether the search's
front beats it, matches it or does not, at no more cost on every cost objective.

"At equal cost" is read as: among the front points whose every cost figure is at most the baseline's, the most
accurate (validation accuracy, the figure both were selected on). Within half a point is a match.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nas.analysis.pareto import front_frame, trials_frame
from nas.checkpoint import atomic_write_bytes
from nas.objectives import ACCURACY, cost_terms, term
from nas.search.baselines import baseline_points
from nas.search.context import build_context, resolve_problem
from nas.search.saved import SavedStudy

MATCH = 0.005


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """How the front fares against one baseline point."""

    baseline: str
    verdict: str  # "beaten", "matched", "not beaten", or "not runnable"
    detail: str


def judge(front: pd.DataFrame, point: dict[str, Any], objectives: tuple[str, ...]) -> Verdict:
    """The front against ``point`` at no more cost on every cost objective."""
    name = point["name"]
    if point.get("unrunnable"):
        return Verdict(baseline=name, verdict="not runnable", detail=point["unrunnable"])
    metrics = point["metrics"]
    costs = {c: float(metrics[term(c).metric]) for c in cost_terms(objectives)}
    cheaper = front
    for cost, value in costs.items():
        cheaper = cheaper[cheaper[cost] <= value * (1 + 1e-9)]
    accuracy = float(metrics[term(ACCURACY).metric])
    if cheaper.empty:
        return Verdict(baseline=name, verdict="not beaten", detail="no front point costs as little")
    best = cheaper.sort_values(ACCURACY, ascending=False).iloc[0]
    gap = float(best[ACCURACY]) - accuracy
    verdict = "beaten" if gap > MATCH else "matched" if gap >= -MATCH else "not beaten"
    detail = f"trial {int(best['number'])}: validation accuracy {float(best[ACCURACY]):.4f} against {accuracy:.4f}"
    return Verdict(baseline=name, verdict=verdict, detail=detail)


def study_baselines(
    name: str, *, results_dir: Path, storage: str | None = None, recompute: bool = False
) -> tuple[list[dict[str, Any]], list[Verdict]]:
    """The study's baseline points (computed once and kept in ``baselines.json``) and the front's verdicts."""
    saved = SavedStudy.open(name, results_dir, storage)
    study, config, paths = saved.study, saved.config, saved.paths
    identity = config.to_json()
    cached = json.loads(paths.baselines.read_text()) if paths.baselines.exists() else {}
    if recompute or cached.get("config") != identity:
        context = build_context(resolve_problem(config), results_dir=results_dir)
        points = [point.to_dict() for point in baseline_points(context)]
        cached = {"config": identity, "points": points}
        atomic_write_bytes(paths.baselines, lambda handle: handle.write(json.dumps(cached, indent=1).encode()))
    front = front_frame(trials_frame(study), config.objectives)
    return cached["points"], [judge(front, point, config.objectives) for point in cached["points"]]
