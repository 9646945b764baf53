"""The Pareto front of a study: non-dominated feasible trials, the trials table, test accuracy of the front."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from nas.checkpoint import atomic_write_bytes
from nas.context import SearchContext
from nas.evaluate import evaluate
from nas.objective import load_trial_weights, trial_path
from nas.objectives import OBJECTIVE_TERMS

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
        metrics = trial.user_attrs.get("metrics", {})
        row = {
            "number": trial.number,
            "state": trial.state.name,
            "accuracy": metrics.get("val_accuracy"),
            "stored_bytes": metrics.get("stored_bytes"),
            "compressed_bytes": metrics.get("compressed_bytes"),
            "feasible": metrics.get("feasible"),
            "finetuned": metrics.get("finetuned"),
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
    mask = pareto_mask(ok[list(objectives)].to_numpy(float), [OBJECTIVE_TERMS[o].direction for o in objectives])
    return ok[mask].sort_values([*objectives[1:2], "number"]).reset_index(drop=True)


def add_test_accuracy(ctx: SearchContext, study_dir: Path, front: pd.DataFrame) -> pd.DataFrame:
    """Front rows with test accuracy (overall and per class), from each member's saved fine-tuned weights.

    The search never sees these figures: they are computed here, for reporting only.
    """
    dataset = ctx.problem.dataset
    overall, per_class = [], []
    for number in front["number"]:
        params, compression = load_trial_weights(trial_path(study_dir, int(number)))
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
