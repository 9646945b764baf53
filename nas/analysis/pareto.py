"""The Pareto front of a study: non-dominated feasible trials, the trials table, test accuracy of the front."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from nas.analysis.quality import MAX_DROP_POINTS
from nas.checkpoint import atomic_write_bytes
from nas.errors import ConfigError
from nas.objectives import OBJECTIVE_TERMS, directions
from nas.paths import StudyPaths
from nas.search.context import ModelContext
from nas.search.objective import load_trial_weights
from nas.search.record import TrialRecord
from nas.training.evaluate import evaluate

POLICY_FIELDS = ("sparsity", "channel_keep", "weight_bits", "activation_bits")


def pareto_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Which rows of ``values`` (n x k) no other row dominates; ``directions`` are maximize/minimize per column."""
    if len(values) == 0:
        return np.zeros(0, bool)
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    loss = np.asarray(values, float) * signs
    no_worse = (loss[:, None, :] <= loss[None, :, :]).all(-1)  # [j, i]: j is no worse than i everywhere
    better = (loss[:, None, :] < loss[None, :, :]).any(-1)
    dominated = (no_worse & better).any(0)
    return ~dominated


def hypervolume_2d(points: np.ndarray, reference: Sequence[float]) -> float:
    """Area dominated by ``points`` (n x 2, both minimized) and bounded by ``reference``."""
    inside = np.asarray(points, float)
    inside = inside[(inside < np.asarray(reference)).all(1)] if len(inside) else inside.reshape(0, 2)
    if len(inside) == 0:
        return 0.0
    inside = inside[np.lexsort((inside[:, 1], inside[:, 0]))]
    area, best_y = 0.0, float(reference[1])
    for x, y in inside:
        if y < best_y:
            area += (reference[0] - x) * (best_y - y)
            best_y = y
    return float(area)


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """All trials as a table: state, metrics, feasibility, timings and every layer's policy."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        record = TrialRecord.of(trial)
        figures = {} if record is None else record.figures
        row = {
            "number": trial.number,
            "state": trial.state.name,
            **{name: figures.get(term.metric) for name, term in OBJECTIVE_TERMS.items()},
            **{f"{name}_provenance": label for name, label in (record.provenance if record else {}).items()},
            "feasible": None if record is None else record.feasible,
            "finetuned": None if record is None else record.finetuned,
            "duration_s": trial.duration.total_seconds() if trial.duration else None,
        }
        for layer, policy in trial.user_attrs.get("candidate", {}).items():
            row.update({f"{layer}.{key}": policy[key] for key in POLICY_FIELDS})
        rows.append(row)
    return pd.DataFrame(rows)


def front_frame(trials: pd.DataFrame, objectives: Sequence[str]) -> pd.DataFrame:
    """The non-dominated rows among complete, feasible trials, sorted by the first cost term."""
    if trials.empty:
        return trials.copy()
    ok = trials[(trials["state"] == TrialState.COMPLETE.name) & (trials["feasible"] == True)]  # noqa: E712
    mask = pareto_mask(ok[list(objectives)].to_numpy(float), directions(objectives))
    return ok[mask].sort_values([*objectives[1:2], "number"]).reset_index(drop=True)


KNEE_TOLERANCE = 0.01  # a degenerate front's knee may give up at most 1 accuracy point to the most accurate member


def knee_point(front: pd.DataFrame, objectives: Sequence[str], *, baseline_accuracy: float | None = None) -> int:
    """Trial number of the front's knee: the member farthest beyond the plane through the front's extremes.

    With ``baseline_accuracy`` (the uncompressed model's, on the split the front was scored on), the knee is
    taken among the members at most ``MAX_DROP_POINTS`` below it, where there are any: the geometric knee of a
    front that reaches far down can be a model the export then warns about (the quickstart's knee gave up 10.9
    points for a fifth of the latency), and a default should never be one.

    Each objective is scaled to [0, 1] over the front with 1 the best; the extremes are the members best in
    each objective, and the knee is the member that lies farthest beyond the hyperplane through them towards
    the ideal point (with two objectives: the line joining the front's two ends).

    A front with no member beyond that plane (one or two members, or all on one line) has no such knee: there
    the knee is the cheapest member (first cost objective) within ``KNEE_TOLERANCE`` accuracy of the most
    accurate one, never a choice by row order.
    """
    if front.empty:
        raise ConfigError("the study has no feasible trial on its front yet; run more trials")
    if baseline_accuracy is not None:
        usable = front[front[objectives[0]] >= baseline_accuracy - MAX_DROP_POINTS / 100]
        front = usable if not usable.empty else front
    beyond = _beyond_extremes(front, objectives)
    if float(np.max(beyond)) <= 1e-9:
        return _tolerant_cheapest(front, objectives)
    return int(front["number"].iloc[int(np.argmax(beyond))])


def _tolerant_cheapest(front: pd.DataFrame, objectives: Sequence[str]) -> int:
    accuracy, cost = objectives[0], objectives[1]
    close = front[front[accuracy] >= front[accuracy].max() - KNEE_TOLERANCE]
    sign = 1.0 if directions(objectives)[1] == "minimize" else -1.0
    ranked = close.assign(_cost=sign * close[cost].astype(float)).sort_values(["_cost", accuracy, "number"])
    return int(ranked["number"].iloc[0])


def _beyond_extremes(front: pd.DataFrame, objectives: Sequence[str]) -> np.ndarray:
    """Each member's scaled distance beyond the hyperplane through the front's extremes (see ``knee_point``)."""
    signs = np.array([1.0 if d == "maximize" else -1.0 for d in directions(objectives)])
    scaled = front[list(objectives)].to_numpy(float) * signs
    span = np.ptp(scaled, axis=0)
    scaled = (scaled - scaled.min(0)) / np.where(span > 0, span, 1.0)
    extremes = scaled[np.argmax(scaled, axis=0)]
    # Plane n . x = 1 through the extremes; lstsq copes with coincident extremes (a degenerate plane).
    normal = np.linalg.lstsq(extremes, np.ones(len(objectives)), rcond=None)[0]
    return (scaled @ normal - 1.0) / (np.linalg.norm(normal) or 1.0)


def add_test_accuracy(ctx: ModelContext, paths: StudyPaths, front: pd.DataFrame) -> pd.DataFrame:
    """Front rows with test accuracy (overall and per class), from each member's saved fine-tuned weights.

    The search never sees these figures: they are computed here, for reporting only.
    """
    dataset = ctx.problem.dataset
    overall, per_class = [], []
    for number in front["number"]:
        params, compression = load_trial_weights(paths.trial_weights(int(number)))
        result = evaluate(ctx.trainer, params, compression, dataset.x_test, dataset.y_test)
        overall.append(result.accuracy)
        per_class.append(" ".join(f"{v:.3f}" for v in result.per_class))
    out = front.copy()
    out.insert(3, "test_accuracy", overall)
    out["test_per_class"] = per_class
    return out


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Writes ``frame`` as CSV atomically."""
    atomic_write_bytes(path, lambda handle: handle.write(frame.to_csv(index=False).encode()))
