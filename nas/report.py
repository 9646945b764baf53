"""Reports of a finished (or running) study: the trials and front tables, and the plots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd

from nas.context import build_context, resolve_problem
from nas.errors import ConfigError
from nas.pareto import add_test_accuracy, front_frame, trials_frame, write_csv
from nas.plots import draw_layer_view, draw_pareto, layer_view_data, pareto_plot_data
from nas.study import default_storage, load_study, study_config, study_dir


@dataclass(frozen=True, kw_only=True)
class ParetoReport:
    """The tables of a study and where they were written."""

    trials: pd.DataFrame
    front: pd.DataFrame
    trials_csv: Path
    front_csv: Path


def open_existing(name: str, results_dir: Path, storage: str | None) -> optuna.Study:
    """Loads a study created by ``nas search`` (default storage under ``results/<study>/``)."""
    directory = study_dir(results_dir, name)
    if storage is None and not (directory / "study.db").exists():
        raise ConfigError(f"no study {name!r} under {results_dir}; run `nas search --study {name}` first")
    return load_study(name, storage or default_storage(results_dir, name))


def pareto_report(name: str, *, results_dir: Path, storage: str | None = None) -> ParetoReport:
    """Writes ``trials.csv`` (all trials) and ``front.csv`` (front members with test accuracy)."""
    study = open_existing(name, results_dir, storage)
    config = study_config(study)
    trials = trials_frame(study)
    front = front_frame(trials, config.objectives)
    if not front.empty:
        context = build_context(resolve_problem(config), results_dir=results_dir)
        front = add_test_accuracy(context, study_dir(results_dir, name), front)
    directory = study_dir(results_dir, name)
    write_csv(directory / "trials.csv", trials)
    write_csv(directory / "front.csv", front)
    return ParetoReport(
        trials=trials, front=front, trials_csv=directory / "trials.csv", front_csv=directory / "front.csv"
    )


def plot_report(name: str, *, results_dir: Path, storage: str | None = None) -> list[Path]:
    """Draws ``pareto.png`` (accuracy versus size) and ``layers.png`` (per-layer view of the front)."""
    study = open_existing(name, results_dir, storage)
    config = study_config(study)
    trials = trials_frame(study)
    front = front_frame(trials, config.objectives)
    directory = study_dir(results_dir, name)
    title = f"{config.model} on {config.dataset}: {len(trials)} trials, {len(front)} on the front"
    draw_pareto(
        pareto_plot_data(trials, front, config.objectives, study.user_attrs["baseline"]),
        directory / "pareto.png",
        title,
    )
    layers = [c.removesuffix(".weight_bits") for c in trials.columns if c.endswith(".weight_bits")]
    draw_layer_view(layer_view_data(front, layers), directory / "layers.png", f"front members of {name}")
    return [directory / "pareto.png", directory / "layers.png"]
