"""``nas select``: choose the front point a deployment's service level allows, export and verify it, and accept
it as a new version with its model card; or roll back to the previous accepted version.

Nothing is accepted unless a point qualifies and its export passes verification; an accepted version is never
overwritten (``nas.deploy.release``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from latency_models.cost import COST_FIGURES
from latency_models.registry import cost_model
from nas.analysis.audit import audit_front
from nas.analysis.pareto import front_frame, trials_frame
from nas.analysis.report import add_robustness
from nas.analysis.rescore import latency_source, rescore_study
from nas.analysis.selection import Choice, ServiceLevel, Shortfall, select_point
from nas.config import SearchConfig
from nas.deploy.model_card import build_card, card_markdown, cost_model_identity, sha256
from nas.deploy.release import accept, current_version, history, releases_dir
from nas.deploy.study_export import export_trials
from nas.paths import StudyPaths
from nas.search.context import build_model_context, resolve_problem
from nas.search.saved import SavedStudy
from nas.search.study import study_config
from nas.training.train import train_baseline


@dataclass(frozen=True, kw_only=True)
class Accepted:
    """A version accepted by ``nas select``."""

    version: int
    directory: Path
    choice: Choice
    card: dict[str, Any]
    new: bool  # False: the choice is the current version already, nothing was written


def device_front(study: optuna.Study, device: str | None, kernel_set: str | None) -> tuple[pd.DataFrame, str]:
    """The study's front on ``device`` (its own device when None, else re-scored) and the device's name."""
    config = study_config(study)
    if device is None or (device == config.device and kernel_set in (None, config.kernel_set)):
        return front_frame(trials_frame(study), config.objectives), config.device
    return rescore_study(study, device, kernel_set).front, device


def select_and_accept(
    name: str,
    level: ServiceLevel,
    *,
    device: str | None,
    kernel_set: str | None,
    results_dir: Path,
    storage: str | None,
    command: str,
    allow_collapsed: bool = False,
) -> Accepted | Shortfall:
    """Selects for ``level``; when a point qualifies, exports, verifies and accepts it. A model far below the
    uncompressed one (``nas.analysis.quality``) is refused unless ``allow_collapsed``."""
    saved = SavedStudy.open(name, results_dir, storage)
    study, config = saved.study, saved.config
    front, target = device_front(study, device, kernel_set)
    baseline = study.user_attrs.get("baseline", {}).get("val_accuracy")
    result = select_point(front, level, config.objectives, baseline_accuracy=baseline)
    if isinstance(result, Shortfall):
        return result
    (record,) = export_trials(name, [result.number], results_dir=results_dir, storage=storage)
    if not record.passed:
        reason = f"trial {result.number}'s export failed verification (see verification.json); nothing accepted"
        return Shortfall(binding={}, closest=result.number, reason=reason)
    if record.quality_warning and not allow_collapsed:
        reason = f"trial {result.number}: {record.quality_warning}; pass --allow-collapsed to accept it anyway"
        return Shortfall(binding={}, closest=result.number, reason=reason)
    paths = StudyPaths(results_dir, name)
    model_bytes = Path(record.model).read_bytes()
    evidence = _evidence(config, paths, front, result.number, target, kernel_set)
    figures = {**_figures(front.set_index("number").loc[result.number], target), **evidence["figures"]}
    cards: dict[int, dict[str, Any]] = {}

    def files_for(version: int) -> dict[str, bytes]:
        card = build_card(
            study=name,
            trial=result.number,
            version=version,
            choice=result.reason,
            figures=figures,
            audit=evidence["audit"],
            robustness=evidence["robustness"],
            record=record,
            model_bytes=model_bytes,
            hashes=evidence["hashes"],
            command=command,
        )
        cards[version] = card
        return {
            "model.tflite": model_bytes,
            "model_card.json": json.dumps(card, indent=1).encode(),
            "model_card.md": card_markdown(card).encode(),
        }

    summary = {"trial": result.number, "device": target, "model_sha256": sha256(model_bytes)}
    root = releases_dir(paths.root)
    current = current_version(root)
    if current is not None and _same(history(root), current, summary):
        card = json.loads((root / f"v{current}" / "model_card.json").read_text())
        return Accepted(version=current, directory=root / f"v{current}", choice=result, card=card, new=False)
    written, directory = accept(root, files_for, summary)
    card = cards[written]
    return Accepted(version=written, directory=directory, choice=result, card=card, new=True)


def _evidence(
    config: SearchConfig, paths: StudyPaths, front: pd.DataFrame, number: int, target: str, kernel_set: str | None
) -> dict[str, Any]:
    """What the card says of the chosen trial beyond its figures: its per-class audit and robustness against the
    uncompressed model, the hashes that identify its inputs, and where its latency comes from."""
    problem = resolve_problem(config)
    baseline = train_baseline(
        problem.graph, problem.dataset, config.train, results_dir=paths.results_dir, weights=config.weights
    )
    chosen = front[front["number"] == number]
    context = build_model_context(problem)
    _, audits = audit_front(context, paths, chosen, baseline.params)
    robust = add_robustness(context, paths, chosen, baseline.params)
    costs = cost_model(target, kernel_set if target != config.device else config.kernel_set)
    return {
        "audit": audits[number],
        "robustness": _robustness(paths, number, float(robust["baseline_robust_accuracy"].iloc[0])),
        "hashes": {
            "dataset_sha256": problem.dataset.fingerprint(),
            "spec_sha256": hashlib.sha256(problem.graph.spec.to_json().encode()).hexdigest(),
            "cost_model": cost_model_identity(costs),
        },
        "figures": {"latency_source": latency_source(costs)},
    }


def _figures(row: pd.Series, device: str) -> dict[str, Any]:
    """The chosen point's figures on ``device`` with their provenance."""
    figures: dict[str, Any] = {"device": device, "val_accuracy": float(row["accuracy"])}
    for name in (*COST_FIGURES, "stored_bytes"):
        value = row.get(name)
        if value is not None and pd.notna(value):
            figures[name] = {"value": float(value), "provenance": row.get(f"{name}_provenance", "exact")}
    return figures


def _same(events: list[dict[str, Any]], version: int, summary: dict[str, Any]) -> bool:
    """Whether accepted ``version`` holds the same trial, device and model file as ``summary``."""
    accepted = next((e for e in events if e["event"] == "accepted" and e["version"] == version), {})
    return all(accepted.get(key) == value for key, value in summary.items())


def _robustness(paths: StudyPaths, number: int, baseline_mean: float) -> dict[str, Any]:
    """The chosen trial's accuracy on each degraded test set, its severity, and the baseline's mean."""
    figures = json.loads(paths.robustness.read_text())
    return {"accuracy": figures[str(number)], "baseline_mean": baseline_mean, "severities": figures["severities"]}
