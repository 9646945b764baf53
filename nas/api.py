"""The Python API: search, export and verify a user's own trained Flax model (or a built-in family).

    import nas.api
    result = nas.api.search(module, variables, data="digits", study="mine", trials=20)
    print(result.front)
    records = result.export("knee")   # .tflite files, verified in the LiteRT interpreter

The command line is a thin layer over the same functions: ``nas search --model package.module:factory``
goes through ``model_reference`` exactly as ``search`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from latency_models.device import load_device
from nas.analysis.pareto import front_frame, trials_frame
from nas.checkpoint import atomic_write_bytes
from nas.config import SearchConfig, TrainConfig, finetune_config, load_space_file
from nas.deploy.study_export import export_trials
from nas.errors import ConfigError
from nas.paths import check_study_name
from nas.search.context import resolve_problem, with_device_limits
from nas.search.study import run_search
from nas.training.data import Dataset, from_arrays, load_dataset
from nas.usermodel.discover import DiscoveredModel, discover
from nas.usermodel.source import UserModel, load_factory, user_model, with_weights
from nas.usermodel.store import StoredModel, store_model

DISCOVERY_EXAMPLES = 32  # inputs the discovered graph must reproduce the model's logits on
DataSource = str | Path | Mapping[str, np.ndarray]


@dataclass(frozen=True, kw_only=True)
class PreparedModel:
    """A user's model discovered and stored: what a ``SearchConfig`` names as its model and weights."""

    discovered: DiscoveredModel
    stored: StoredModel


def discover_model(
    model: Any, variables: Any = None, *, data: DataSource = "digits", call_kwargs: dict[str, Any] | None = None
) -> DiscoveredModel:
    """The graph the search sees in ``model`` (see ``describe``), checked against the model's own outputs."""
    source = user_model(model, variables, call_kwargs=call_kwargs)
    return _discover(source, dataset_of(data))


def _discover(source: UserModel, dataset: Dataset) -> DiscoveredModel:
    return discover(
        source.forward,
        source.variables,
        dataset.x_train[:DISCOVERY_EXAMPLES],
        name=source.name,
        description=source.description,
    )


def prepare_model(source: UserModel, dataset: Dataset, *, origin: str, results_dir: Path) -> PreparedModel:
    """Discovers ``source`` on ``dataset``'s inputs and stores it under ``results_dir/models/<hash>/``."""
    discovered = _discover(source, dataset)
    return PreparedModel(
        discovered=discovered, stored=store_model(discovered, source, origin=origin, results_dir=results_dir)
    )


@dataclass(frozen=True, kw_only=True)
class ModelReference:
    """What a ``SearchConfig`` stores as its model and weights, and the discovery behind them (if any)."""

    model: str
    weights: str | None
    discovered: DiscoveredModel | None = None


def model_reference(model: str, *, weights: str | Path | None, dataset: Dataset, results_dir: Path) -> ModelReference:
    """The model and weights a ``SearchConfig`` stores for a command-line ``--model`` / ``--weights``.

    A family name or spec ``.json`` is kept as it is; ``package.module:factory`` is called, given the weights
    file if any, discovered and stored, and the stored spec and weights are returned.
    """
    if ":" not in model:
        if weights is not None:
            raise ConfigError("--weights needs --model package.module:factory (built-in families train their own)")
        return ModelReference(model=model, weights=None)
    source = load_factory(model)
    if weights is not None:
        source = with_weights(source, Path(weights))
    prepared = prepare_model(source, dataset, origin=model, results_dir=results_dir)
    return ModelReference(
        model=str(prepared.stored.spec_path),
        weights=str(prepared.stored.weights_path),
        discovered=prepared.discovered,
    )


def dataset_of(data: DataSource) -> Dataset:
    """A dataset by name or path, or from arrays ``x_train, y_train, x_test, y_test``, taken as they are (the
    inputs the model was trained on: any finite values, never rescaled)."""
    if isinstance(data, (str, Path)):
        return load_dataset(str(data))
    missing = {"x_train", "y_train", "x_test", "y_test"} - set(data)
    if missing:
        raise ConfigError(f"data lacks {sorted(missing)}; pass x_train, y_train, x_test and y_test arrays")
    arrays = {key: np.asarray(data[key]) for key in ("x_train", "y_train", "x_test", "y_test")}
    return from_arrays("arrays", **arrays, raw=True)


def _data_reference(data: DataSource, dataset: Dataset, results_dir: Path) -> str:
    """What the study config stores as its dataset: the name or path, or a copy of given arrays saved under
    ``results_dir/datasets/`` so later commands read the same data by path."""
    if isinstance(data, (str, Path)):
        return str(data)
    path = results_dir / "datasets" / f"{dataset.fingerprint()[:16]}.npz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {key: np.asarray(data[key]) for key in ("x_train", "y_train", "x_test", "y_test")}
        arrays["raw_inputs"] = np.asarray(True)  # read back as they are, as given
        atomic_write_bytes(path, lambda handle: np.savez(handle, **arrays))  # type: ignore[arg-type]
    return str(path)


@dataclass(frozen=True, kw_only=True)
class SearchResult:
    """A finished (or resumed) study: its trials, its front, and exports of its members."""

    name: str
    study: optuna.Study
    config: SearchConfig
    discovered: DiscoveredModel | None
    results_dir: Path
    storage: str | None

    @property
    def front(self) -> pd.DataFrame:
        """The feasible Pareto front, one row per trial (objectives, device figures, provenance)."""
        return front_frame(trials_frame(self.study), self.config.objectives)

    def export(self, which: int | str = "knee", *, threads: int = 1, under_load: bool = False) -> list[dict[str, Any]]:
        """Exports trial ``which`` (a number, ``"knee"`` or ``"pareto"``) to ``.tflite`` and verifies each file
        in the LiteRT interpreter; each record holds the path, accuracies, parity and cost checks. Refused while
        searches run on this machine (their load would be timed with the model) unless ``under_load``.

        The records are the JSON form ``verification.json`` holds (``nas.deploy.export_record.ExportRecord``)."""
        if which not in ("knee", "pareto") and not isinstance(which, int):
            raise ConfigError(f"export which={which!r}: use a trial number, 'knee' or 'pareto'")
        records = export_trials(
            self.name,
            [which] if isinstance(which, int) else None,
            results_dir=self.results_dir,
            storage=self.storage,
            threads=threads,
            knee=which == "knee",
            under_load=under_load,
        )
        return [record.to_dict() for record in records]


def search_config(
    *,
    model: str,
    weights: str | None = None,
    width_multiplier: float | None = None,
    dataset: str = "digits",
    space: str | Path | Mapping[str, Any] | None = None,
    objectives: Sequence[str] = ("accuracy", "latency_ms"),
    budgets: Mapping[str, float] | None = None,
    device: str = "host",
    kernel_set: str | None = None,
    search_sparsity: bool | None = None,
    channel_norm: str = "l2",
    snap_channels: bool = True,
    sampler: str = "tpe",
    seed: int = 0,
    epochs: int | None = None,
    train_lr: float | None = None,
    finetune_steps: int | None = None,
    finetune_lr: float | None = None,
    finetune_targets: str | None = None,
    verify_trials: bool = True,
    host_latency: str = "auto",
) -> SearchConfig:
    """The one translation of search settings into a ``SearchConfig``, used by ``search`` and ``nas search``.

    ``model`` is a family name, a spec file or a stored user model's spec path (``model_reference``); ``space``
    a search-space JSON file or its dict; ``budgets`` limits in each term's raw unit (the device's RAM and flash
    become budgets when it has them); ``epochs`` and ``train_lr`` the baseline's training epochs and rate
    (default: ``TrainConfig``'s; the rate then is the one the family's spec declares, else 3e-3).
    """
    if isinstance(space, (str, Path)):
        space = load_space_file(space)
    return SearchConfig(
        model=model,
        weights=weights,
        width_multiplier=width_multiplier,
        dataset=dataset,
        space=None if space is None else dict(space),
        objectives=tuple(objectives),
        budgets=with_device_limits(dict(budgets or {}), load_device(device)),
        device=device,
        kernel_set=kernel_set,
        search_sparsity=search_sparsity,
        channel_norm=channel_norm,
        snap_channels=snap_channels,
        sampler=sampler,
        seed=seed,
        train=TrainConfig(seed=seed, learning_rate=train_lr, **({} if epochs is None else {"epochs": epochs})),
        finetune=finetune_config(finetune_steps, finetune_lr, finetune_targets),
        verify_trials=verify_trials,
        host_latency=host_latency,
    )


def search(
    model: Any,
    variables: Any = None,
    *,
    data: DataSource = "digits",
    study: str,
    trials: int = 20,
    device: str = "host",
    objectives: Sequence[str] = ("accuracy", "latency_ms"),
    budgets: Mapping[str, float] | None = None,
    finetune_steps: int | None = None,
    finetune_lr: float | None = None,
    finetune_targets: str | None = None,
    verify_trials: bool = True,
    host_latency: str = "auto",
    sampler: str = "tpe",
    seed: int = 0,
    kernel_set: str | None = None,
    space: str | Path | Mapping[str, Any] | None = None,
    channel_norm: str = "l2",
    snap_channels: bool = True,
    search_sparsity: bool | None = None,
    width_multiplier: float | None = None,
    warm_start: bool = False,
    results_dir: str | Path = "results",
    storage: str | None = None,
    call_kwargs: dict[str, Any] | None = None,
    show_progress: bool = True,
    workers: int = 1,
) -> SearchResult:
    """Searches per-layer pruning and precision for a trained ``model`` on ``device``.

    Args:
        model: a ``flax.linen`` module (with ``variables``), an ``nnx`` module, a function
            ``forward(variables, x)`` (with ``variables``), or a built-in family name such as ``"cnn"``.
        variables: the trained variables of a linen module or forward function; they are the baseline.
        data: a dataset name or path, or arrays ``x_train, y_train, x_test, y_test`` (images channels last).
        study: the study name; the same call again resumes it.
        budgets: limits in each term's raw unit, e.g. ``{"latency_ms": 0.01, "ram_bytes": 65536}``.
        finetune_steps: fine-tuning steps per candidate (default: the CLI's 300).
        finetune_lr: fine-tuning learning rate (default None: chosen per model by a short sweep on the baseline).
        finetune_targets: ``"teacher"`` (default: the uncompressed model's outputs) or ``"labels"``.
        verify_trials: export every fine-tuned trial and run it in LiteRT; one that diverges from its JAX model
            is infeasible (default True).
        host_latency: on the host, ``"measured"`` (each trial's file timed in LiteRT inside the trial, against a
            reference model timed beside it) or ``"predicted"`` (the tables); ``"auto"`` (default): measured for
            a new study of the host's latency, a resumed study's own setting.
        kernel_set, space, channel_norm, search_sparsity, width_multiplier: as ``nas search``'s flags
            (``space``: a JSON file or its dict); ``warm_start``: seed a new study with sensitivity-based allocations.
        snap_channels: keep whole blocks of the device's channel granule when pruning channels (default True;
            ``nas search --no-snap-channels`` turns it off; a device without a granule is not changed by it).
        workers: processes that run trials at once, each with an equal share of the cores.
    """
    check_study_name(study)
    results = Path(results_dir)
    dataset = dataset_of(data)
    discovered: DiscoveredModel | None = None
    if isinstance(model, str):
        reference, weights = model, None
    else:
        prepared = prepare_model(
            user_model(model, variables, call_kwargs=call_kwargs), dataset, origin="python", results_dir=results
        )
        discovered = prepared.discovered
        reference, weights = str(prepared.stored.spec_path), str(prepared.stored.weights_path)
    config = search_config(
        model=reference,
        weights=weights,
        width_multiplier=width_multiplier,
        dataset=_data_reference(data, dataset, results),
        space=space,
        objectives=tuple(objectives),
        budgets=budgets,
        device=device,
        kernel_set=kernel_set,
        search_sparsity=search_sparsity,
        channel_norm=channel_norm,
        snap_channels=snap_channels,
        sampler=sampler,
        seed=seed,
        finetune_steps=finetune_steps,
        finetune_lr=finetune_lr,
        finetune_targets=finetune_targets,
        verify_trials=verify_trials,
        host_latency=host_latency,
    )
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is the progress bar's job
    try:
        summary = run_search(
            resolve_problem(config),
            name=study,
            trials=trials,
            results_dir=results,
            storage=storage,
            show_progress=show_progress,
            workers=workers,
            warm_start=warm_start,
        )
    finally:
        optuna.logging.set_verbosity(verbosity)
    return SearchResult(
        name=study, study=summary.study, config=config, discovered=discovered, results_dir=results, storage=storage
    )


def describe(discovered: DiscoveredModel) -> str:
    """A table of the discovered graph: each node, its op and shapes, and the prunable channel groups."""
    graph = discovered.graph
    lines = [f"{'node':24s} {'op':16s} {'input':>14s} {'output':>14s}  channel group"]
    for layer in graph.layers:
        leader = graph.leader_of(layer.out_group)
        group = f"{layer.out_group} (pruned as {leader})" if leader else f"{layer.out_group} (fixed)"
        lines.append(f"{layer.name:24s} {layer.op:16s} {layer.input_shape!s:>14s} {layer.output_shape!s:>14s}  {group}")
    lines.append(
        f"{len(graph.compressible)} compressible layers, {len(graph.prunable_groups)} of "
        f"{len(graph.group_sizes)} channel groups prunable; logits reproduced to {discovered.parity_error:.1e}"
    )
    lines += [f"stays float: {name}: {reason}" for name, reason in discovered.float_regions]
    return "\n".join(lines)
