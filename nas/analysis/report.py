"""Reports of a finished (or running) study: the trials and front tables, and the plots."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from latency_models.registry import cost_model
from nas.analysis.audit import audit_front
from nas.analysis.compare import Comparison, compare_fronts
from nas.analysis.pareto import add_test_accuracy, front_frame, trials_frame, write_csv
from nas.analysis.plots import (
    draw_device_fronts,
    draw_layer_view,
    draw_pareto,
    layer_view_data,
    pareto_plot_data,
)
from nas.analysis.rescore import Rescored, rescore_study, study_graph
from nas.checkpoint import atomic_write_bytes
from nas.compress.compression import build_compression
from nas.config import SearchConfig
from nas.errors import ConfigError
from nas.paths import StudyPaths
from nas.search.context import ModelContext, build_model_context, resolve_problem
from nas.search.objective import load_trial_weights
from nas.search.saved import SavedStudy
from nas.training.robustness import degraded_sets, robust_accuracy
from nas.training.train import cached_baseline
from search_spaces.graph import ModelGraph
from search_spaces.space import Candidate


@dataclass(frozen=True, kw_only=True)
class ParetoReport:
    """The tables of a study and where they were written."""

    objectives: tuple[str, ...]
    trials: pd.DataFrame
    front: pd.DataFrame
    trials_csv: Path
    front_csv: Path
    note: str | None = None  # why a part of the report is missing


def pareto_report(name: str, *, results_dir: Path, storage: str | None = None) -> ParetoReport:
    """Writes ``trials.csv`` (all trials) and ``front.csv`` (front members with test accuracy)."""
    saved = SavedStudy.open(name, results_dir, storage)
    study, config, paths = saved.study, saved.config, saved.paths
    trials = trials_frame(study)
    front = front_frame(trials, config.objectives)
    front, note = test_figures(config, paths, front)
    write_csv(paths.trials_csv, trials)
    write_csv(paths.front_csv, front)
    return ParetoReport(
        objectives=config.objectives,
        trials=trials,
        front=front,
        trials_csv=paths.trials_csv,
        front_csv=paths.front_csv,
        note=note,
    )


def test_figures(config: SearchConfig, paths: StudyPaths, front: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """The front with each member's test accuracy and its per-class audit against the uncompressed baseline
    (the full audits are written to ``audit.json``, merged by trial number with any written before), and a
    note when the audit could not run. Reports read saved trials and never train: without the cached
    baseline the audit is skipped."""
    if front.empty:
        return front, None
    problem = resolve_problem(config)
    context = build_model_context(problem)
    front = add_test_accuracy(context, paths, front)
    baseline = cached_baseline(
        problem.graph, problem.dataset, config.train, results_dir=paths.results_dir, weights=config.weights
    )
    if baseline is None:
        return front, "per-class audit skipped: the baseline's cache is gone; `nas train` with the study's settings"
    front, audits = audit_front(context, paths, front, baseline.params)
    front = add_robustness(context, paths, front, baseline.params)
    known = json.loads(paths.audit.read_text()) if paths.audit.exists() else {}
    known.update({str(number): audit.to_dict() for number, audit in audits.items()})
    atomic_write_bytes(paths.audit, lambda handle: handle.write(json.dumps(known, indent=1).encode()))
    return front, None


def add_robustness(
    context: ModelContext, paths: StudyPaths, front: pd.DataFrame, baseline_params: dict[str, Any]
) -> pd.DataFrame:
    """The front with each member's mean accuracy on degraded test inputs and the baseline's beside it; every
    corruption's figure goes to ``robustness.json`` (with its severity), merged by trial number."""
    dataset = context.problem.dataset
    sets = degraded_sets(dataset.x_test, dataset.x_train)
    identity = build_compression(context.graph, baseline_params, Candidate.uncompressed(context.graph))
    figures = {"baseline": robust_accuracy(context.trainer, baseline_params, identity, sets, dataset.y_test)}
    for number in front["number"]:
        params, compression = load_trial_weights(paths.trial_weights(int(number)))
        figures[str(int(number))] = robust_accuracy(context.trainer, params, compression, sets, dataset.y_test)
    known = json.loads(paths.robustness.read_text()) if paths.robustness.exists() else {}
    known.update(figures)
    known["severities"] = {name: corruption.severity for name, (corruption, _) in sets.items()}
    atomic_write_bytes(paths.robustness, lambda handle: handle.write(json.dumps(known, indent=1).encode()))
    out = front.copy()
    out["robust_accuracy"] = [round(figures[str(int(n))]["mean"], 4) for n in front["number"]]
    out["baseline_robust_accuracy"] = round(figures["baseline"]["mean"], 4)
    return out


def require_finished_trials(study: optuna.Study) -> None:
    """Refuses a study with no finished trial, naming why its trials failed."""
    if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return
    failed = [t for t in study.trials if "fail_reason" in t.user_attrs]
    why = f"; trial {failed[-1].number} failed: {failed[-1].user_attrs['fail_reason']}" if failed else ""
    raise ConfigError(f"study {study.study_name!r} has no finished trial yet ({len(study.trials)} trials){why}")


def plot_report(name: str, *, results_dir: Path, storage: str | None = None) -> list[Path]:
    """Draws ``pareto.png`` (accuracy versus the first cost term; ``pareto_<term>.png`` for further cost terms) and
    ``layers.png`` (per-layer view of the front)."""
    saved = SavedStudy.open(name, results_dir, storage)
    study, config, paths = saved.study, saved.config, saved.paths
    require_finished_trials(study)
    trials = trials_frame(study)
    front = front_frame(trials, config.objectives)
    references = json.loads(paths.baselines.read_text())["points"] if paths.baselines.exists() else []
    title = f"{config.model} on {config.dataset}: {len(trials)} trials, {len(front)} on the front"
    written = []
    for index, cost in enumerate(config.cost_objectives):
        # The first cost term keeps the plain name pareto.png; further ones are named after their term.
        path = paths.plot("pareto" if index == 0 else f"pareto_{cost}")
        data = pareto_plot_data(trials, front, cost, study.user_attrs["baseline"], references)
        draw_pareto(data, path, title)
        written.append(path)
    layers = [c.removesuffix(".weight_bits") for c in trials.columns if c.endswith(".weight_bits")]
    draw_layer_view(layer_view_data(front, layers), paths.plot("layers"), f"front members of {name}")
    return [*written, paths.plot("layers")]


@dataclass(frozen=True, kw_only=True)
class RescoredReport:
    """A study re-scored for another device, and where its tables were written."""

    rescored: Rescored
    trials_csv: Path
    front_csv: Path
    note: str | None = None  # why a part of the report is missing


def rescored_report(
    name: str, device: str, *, kernel_set: str | None = None, results_dir: Path, storage: str | None = None
) -> RescoredReport:
    """Writes ``trials.<device>.csv`` and ``front.<device>.csv`` (front with test accuracy) of the study re-scored
    for ``device``: same accuracies, that device's costs, feasibility and front."""
    saved = SavedStudy.open(name, results_dir, storage)
    paths = saved.paths
    rescored = rescore_study(saved.study, device, kernel_set)
    front, note = test_figures(saved.config, paths, rescored.front)
    trials_csv, front_csv = paths.root / f"trials.{device}.csv", paths.root / f"front.{device}.csv"
    write_csv(trials_csv, rescored.trials)
    write_csv(front_csv, front)
    return RescoredReport(
        rescored=Rescored(**{**vars(rescored), "front": front}),
        trials_csv=trials_csv,
        front_csv=front_csv,
        note=note,
    )


def device_fronts_plot(
    name: str, devices: list[str], *, cost: str = "latency_ms", results_dir: Path, storage: str | None = None
) -> Path:
    """Draws ``pareto_devices.png``: the study's trials and front on each of ``devices``, side by side."""
    saved = SavedStudy.open(name, results_dir, storage)
    study, config = saved.study, saved.config
    graph = study_graph(config)
    accuracy = study.user_attrs["baseline"]["val_accuracy"]
    panels = []
    for device in devices:
        rescored = rescore_study(study, device)
        data = pareto_plot_data(rescored.trials, rescored.front, cost, _device_baseline(graph, device, accuracy))
        panels.append((f"{device} [{rescored.kernel_set}]: {rescored.latency_kind}", data))
    path = StudyPaths(results_dir, name).plot("pareto_devices")
    title = f"{name}: {config.model} on {config.dataset}, {len(study.trials)} trials, searched for {config.device}"
    draw_device_fronts(panels, path, title)
    return path


def _device_baseline(graph: ModelGraph, device: str, accuracy: float) -> dict[str, float]:
    """The uncompressed model's accuracy and, where ``device`` runs float, its cost figures there."""
    model = cost_model(device)
    uncompressed = Candidate.uncompressed(graph)
    if model.device.unrunnable(graph, uncompressed):
        return {"val_accuracy": accuracy}
    return {"val_accuracy": accuracy, **model.cost(graph, uncompressed).metrics()}


def compare_studies(
    name_a: str,
    name_b: str,
    *,
    device: str | None,
    tolerance: float,
    results_dir: Path,
    storage_a: str | None = None,
    storage_b: str | None = None,
) -> tuple[Comparison, str]:
    """Compares the fronts of two studies on one device (their own, which must agree, or ``device`` re-scoring
    both); returns the comparison and the device."""
    saved = [SavedStudy.open(name_a, results_dir, storage_a), SavedStudy.open(name_b, results_dir, storage_b)]
    studies, configs = [s.study for s in saved], [s.config for s in saved]
    if configs[0].objectives != configs[1].objectives:
        raise ConfigError(
            f"{name_a} optimizes {','.join(configs[0].objectives)} and {name_b} {','.join(configs[1].objectives)}; "
            "compare studies with the same objectives"
        )
    if device is None and configs[0].device != configs[1].device:
        raise ConfigError(
            f"{name_a} was searched for {configs[0].device} and {name_b} for {configs[1].device}; pass --device to "
            "re-score both for one device"
        )
    target = device or configs[0].device
    fronts = [
        rescore_study(study, target).front if device else front_frame(trials_frame(study), config.objectives)
        for study, config in zip(studies, configs, strict=True)
    ]
    if fronts[0].empty and fronts[1].empty:
        raise ConfigError(f"neither study has a feasible front point on {target}; nothing to compare")
    return compare_fronts(fronts[0], fronts[1], configs[0].objectives, tolerance), target
