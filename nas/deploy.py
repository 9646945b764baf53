"""Export and verification of study trials: ``results/<study>/models/trial-N.tflite`` + ``verification.json``.

Every export is verified at once in the LiteRT interpreter (XNNPACK and builtin kernels) against the JAX
fake-quant model of the same candidate on the test split. A model that fails (accuracy off by more than half
a point or top-1 agreement under 99%) is recorded with the first layer whose output diverges.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from nas.checkpoint import atomic_write_bytes
from nas.context import SearchContext, build_context, resolve_problem
from nas.data import load_dataset
from nas.errors import ConfigError
from nas.export import export_candidate
from nas.finetune import logits
from nas.layer_diff import compare_layers, first_divergence
from nas.objective import load_trial_weights, trial_path
from nas.objectives import OBJECTIVE_TERMS
from nas.pareto import front_frame, trials_frame
from nas.report import open_existing
from nas.runtime_memory import tensor_memory
from nas.shrink import shrink
from nas.study import study_config, study_dir
from nas.verify import ModelLoadError, Reference, check_kernels
from search_spaces.space import suggest_candidate

CALIBRATION_EXAMPLES = 32


def knee_point(front: pd.DataFrame, objectives: tuple[str, ...]) -> int:
    """Trial number of the front member farthest from the line joining the front's two ends (normalized)."""
    if front.empty:
        raise ConfigError("the study has no feasible trial on its front yet; run more trials")
    values = front[list(objectives[:2])].to_numpy(float)
    signs = np.array([1.0 if OBJECTIVE_TERMS[o].direction == "maximize" else -1.0 for o in objectives[:2]])
    scaled = values * signs
    span = np.ptp(scaled, axis=0)
    scaled = (scaled - scaled.min(0)) / np.where(span > 0, span, 1.0)
    a, b = scaled[np.argmin(scaled[:, 1])], scaled[np.argmin(scaled[:, 0])]
    direction = (b - a) / (np.linalg.norm(b - a) or 1.0)
    offsets = scaled - a
    distance = np.abs(offsets[:, 0] * direction[1] - offsets[:, 1] * direction[0])
    return int(front["number"].iloc[int(np.argmax(distance))])


def export_trials(
    name: str,
    numbers: list[int] | None,
    *,
    results_dir: Path,
    storage: str | None = None,
    threads: int = 1,
    knee: bool = False,
) -> list[dict[str, Any]]:
    """Exports and verifies trials (``numbers``; the whole front when None; the knee point with ``knee``)."""
    study = open_existing(name, results_dir, storage)
    config = study_config(study)
    front = front_frame(trials_frame(study), config.objectives)
    if knee:
        numbers = [knee_point(front, config.objectives)]
    elif numbers is None:
        numbers = [int(n) for n in front["number"]]
    _check_trials(study, numbers, study_dir(results_dir, name))
    context = build_context(resolve_problem(config), results_dir=results_dir)
    records = [export_trial(context, study, number, study_dir(results_dir, name), threads) for number in numbers]
    return records


def export_trial(
    context: SearchContext, study: optuna.Study, number: int, directory: Path, threads: int
) -> dict[str, Any]:
    """Exports one trial, verifies it, writes the model and its record; returns the record."""
    trial = study.trials[number]
    graph, dataset = context.graph, context.problem.dataset
    candidate = suggest_candidate(optuna.trial.FixedTrial(trial.params), graph, context.problem.space)
    params, compression = load_trial_weights(trial_path(directory, number))
    model = export_candidate(graph, params, compression, candidate, dataset.x_train[:CALIBRATION_EXAMPLES])
    reference = Reference(logits=logits(context.trainer, params, compression, dataset.x_test), labels=dataset.y_test)
    jax_accuracy = float((reference.logits.argmax(1) == dataset.y_test).mean())
    checks = check_kernels(model.content, dataset.x_test, dataset.y_test, reference, threads=threads)
    passed = all(check.passed for check in checks)
    path = directory / "models" / f"trial-{number}.tflite"
    atomic_write_bytes(path, lambda handle: handle.write(model.content))
    atomic_write_bytes(reference_path(path), lambda handle: np.save(handle, reference.logits))
    metrics = trial.user_attrs.get("metrics", {})
    record = {
        "trial": number,
        "dataset": context.config.dataset,
        "model": str(path),
        "passed": passed,
        "candidate": candidate.to_dict(),
        "file_bytes": model.file_bytes,
        "gzip_bytes": model.gzip_bytes,
        "predicted": {
            "stored_bytes": metrics.get("stored_bytes"),
            "compressed_bytes": metrics.get("compressed_bytes"),
            "provenance": "exact size accounting of the constants (graph structure not counted)",
        },
        "jax_test_accuracy": jax_accuracy,
        "kernels": [{**asdict(check), "passed": check.passed} for check in checks],
        "latency_provenance": "measured on this host, LiteRT Python interpreter, batch 1",
        "runtime_memory": asdict(tensor_memory(model.content)),
    }
    if not passed:
        record.update(divergence_report(model.content, graph, params, compression, dataset.x_test[:64]))
    _merge_record(directory / "verification.json", record)
    return record


def divergence_report(content: bytes, graph, params, compression, x: np.ndarray) -> dict[str, Any]:
    """Per-layer output comparison of a failed export, naming the first layer that diverges."""
    small = shrink(graph, params, compression)
    diffs = compare_layers(content, small.graph, small.params, small.compression, x)
    divergent = first_divergence(diffs)
    return {
        "layers": [asdict(d) | {"steps": d.steps} for d in diffs],
        "first_divergent_layer": None if divergent is None else divergent.layer,
    }


def reference_path(model_path: Path) -> Path:
    """Where the JAX test-split outputs of an exported model are kept (for ``nas verify``)."""
    return model_path.with_suffix(".jax_logits.npy")


def verify_file(path: Path, *, dataset_source: str | None, threads: int = 1) -> dict[str, Any]:
    """Re-runs the checks on any ``.tflite``: against the JAX predictions when the file was exported here."""
    try:
        content = path.read_bytes()
    except OSError as err:
        raise ModelLoadError(f"cannot read {str(path)!r}: {err.strerror}") from None
    record = _record_of(path)
    source = dataset_source or (record or {}).get("dataset") or "digits"
    dataset = load_dataset(source)
    stored = reference_path(path)
    reference = Reference(logits=np.load(stored), labels=dataset.y_test) if stored.exists() else None
    jax_accuracy = None if record is None else record["jax_test_accuracy"]
    checks = check_kernels(content, dataset.x_test, dataset.y_test, reference, threads=threads)
    return {
        "model": str(path),
        "dataset": source,
        "reference": "JAX fake-quant predictions of the same candidate" if reference is not None else None,
        "jax_test_accuracy": jax_accuracy,
        "passed": all(check.passed for check in checks),
        "kernels": [{**asdict(check), "passed": check.passed} for check in checks],
        "runtime_memory": asdict(tensor_memory(content)),
    }


def _record_of(path: Path) -> dict[str, Any] | None:
    verification = path.parent.parent / "verification.json"
    if not verification.exists():
        return None
    for record in json.loads(verification.read_text()).values():
        if Path(record["model"]).resolve() == path.resolve():
            return record
    return None


def _check_trials(study: optuna.Study, numbers: list[int], directory: Path) -> None:
    complete = {t.number for t in study.trials if t.state.name == "COMPLETE"}
    for number in numbers:
        if number not in complete:
            raise ConfigError(f"trial {number} of {study.study_name!r} is not a finished trial")
        if not trial_path(directory, number).exists():
            raise ConfigError(f"the weights of trial {number} are missing ({trial_path(directory, number)})")


def _merge_record(path: Path, record: dict[str, Any]) -> None:
    records = json.loads(path.read_text()) if path.exists() else {}
    records[f"trial-{record['trial']}"] = record
    atomic_write_bytes(path, lambda handle: handle.write(json.dumps(records, indent=1).encode()))
