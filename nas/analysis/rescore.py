"""One study, many devices: a finished study's trials costed again for another device, without retraining.

A trial's accuracy belongs to its fine-tuned weights and does not change with the device; its latency, energy,
RAM and flash do, and so does its feasibility: the other device may not run a layer's precision, and its memory
limits replace those of the study's device (budgets the user set on the study stay). The front is then
selected again from the new figures. Every figure keeps its provenance, and the device is named.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from latency_models.cost import COST_FIGURES, Cost
from latency_models.device import DEVICES_DIR, DeviceProfile, load_device
from latency_models.kinds.measured.model import MeasuredCostModel
from latency_models.layered import LayeredCostModel
from latency_models.registry import cost_model
from nas.analysis.pareto import front_frame, trials_frame
from nas.compress.float_regions import load_spec
from nas.config import SearchConfig
from nas.objectives import budget_violations, term
from nas.search.context import with_device_limits
from nas.search.record import TrialRecord
from nas.search.study import study_config
from nas.training.data import load_dataset
from search_spaces.graph import ModelGraph, analyze
from search_spaces.space import Candidate


@dataclass(frozen=True, kw_only=True)
class Rescored:
    """A study's trials and front as costed on ``device``."""

    device: str
    kernel_set: str
    latency_source: str
    latency_kind: str
    objectives: tuple[str, ...]
    budgets: dict[str, float]
    trials: pd.DataFrame
    front: pd.DataFrame


def study_graph(config: SearchConfig) -> ModelGraph:
    """The analyzed graph a study searched (its model, width and dataset's input)."""
    data = load_dataset(config.dataset)
    spec = load_spec(config.model, width_multiplier=config.width_multiplier)
    return analyze(spec, data.input_shape, data.num_classes)


def budgets_for(config: SearchConfig, device: DeviceProfile, directory: Path = DEVICES_DIR) -> dict[str, float]:
    """The study's own budgets with the memory limits of ``device`` in place of those of the study's device."""
    study_device = load_device(config.device, directory)
    inherited = {"ram_bytes": study_device.ram_bytes, "flash_bytes": study_device.flash_bytes}
    own = {name: limit for name, limit in config.budgets.items() if inherited.get(name) != limit}
    return with_device_limits(own, device)


def rescore_study(
    study: optuna.Study, device: str, kernel_set: str | None = None, directory: Path = DEVICES_DIR
) -> Rescored:
    """``study``'s trials with the cost figures, feasibility and front of ``device`` (profiles in ``directory``)."""
    config = study_config(study)
    graph = study_graph(config)
    model = cost_model(device, kernel_set, directory)
    budgets = budgets_for(config, model.device, directory)
    trials = trials_frame(study)
    by_number = {trial.number: trial for trial in study.get_trials(deepcopy=False)}
    updates = [_rescored_row(by_number[int(n)], graph, model, budgets) for n in trials["number"]]
    for column in sorted({c for row in updates for c in row}):
        trials[column] = [row.get(column) for row in updates]
    trials["device"] = device
    return Rescored(
        device=device,
        kernel_set=model.kernel_set,
        latency_source=latency_source(model),
        latency_kind=latency_kind(model),
        objectives=config.objectives,
        budgets=budgets,
        trials=trials,
        front=front_frame(trials, config.objectives),
    )


def _rescored_row(
    trial: optuna.trial.FrozenTrial, graph: ModelGraph, model: LayeredCostModel, budgets: dict[str, float]
) -> dict[str, Any]:
    """The device columns of one trial: its figures and their provenance, feasibility and the reason if not."""
    blank = {name: None for name in COST_FIGURES} | {f"{name}_provenance": None for name in COST_FIGURES}
    if trial.state != optuna.trial.TrialState.COMPLETE or "candidate" not in trial.user_attrs:
        return {**blank, "feasible": None, "infeasible_because": "not a finished trial"}
    candidate = Candidate.from_dict(trial.user_attrs["candidate"])
    record = TrialRecord.of(trial)
    if record is not None and record.diverged:  # its export diverged in LiteRT: infeasible on every device
        reason = record.infeasible_reason or "its export diverged from its JAX model"
        return {**blank, "feasible": False, "infeasible_because": reason}
    unrunnable = model.device.unrunnable(graph, candidate)
    if unrunnable:
        reason = f"{model.device.name} does not run {', '.join(unrunnable)}"
        return {**blank, "feasible": False, "infeasible_because": reason}
    cost: Cost = model.cost(graph, candidate)
    metrics = {**(record.figures if record else {}), **cost.metrics()}
    over = {name: excess for name, excess in budget_violations(budgets, metrics).items() if excess > 0}
    reason = ", ".join(f"{term(name).label} {excess:+.0%} over the budget" for name, excess in over.items())
    return {
        **cost.metrics(),
        **{f"{name}_provenance": label for name, label in cost.provenance().items()},
        "feasible": not over,
        "infeasible_because": reason or None,
    }


def latency_source(model: LayeredCostModel) -> str:
    """Where a device's latency comes from, in a few words: a measured table, or analytic with its expected error."""
    if isinstance(model, MeasuredCostModel):
        kind = "a measured table"
    else:
        analytic = model.device.analytic or {}
        kind = f"analytic: {str(analytic.get('expected_error', 'expected error not stated')).split(';')[0]}"
    calibration = "" if model.calibration is None else f"; calibrated on {len(model.calibration.points)} models"
    return f"{model.device.name} [{model.kernel_set}], latency {kind}{calibration}"


def latency_kind(model: LayeredCostModel) -> str:
    """``measured``, ``analytic`` or either ``, calibrated``: the short label of a device's latency figures."""
    kind = "measured" if isinstance(model, MeasuredCostModel) else "analytic"
    return kind if model.calibration is None else f"{kind}, calibrated"
