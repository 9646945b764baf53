"""Baseline training with optax, cached by a content hash of (spec, data, seed, hyper-parameters).

The cache lives in ``results/baselines/<hash>/``: the folded float parameters as ``.npz`` and a JSON sidecar
with the accuracies and the inputs of the hash, so a second search on the same model never retrains it.
A user's own model brings its weights: then the baseline is those weights, evaluated, and nothing is trained.
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nas.checkpoint import atomic_write_bytes, load_tree, save_tree
from nas.compress.compression import build_compression
from nas.compress.models import SpecNet, fold_batchnorm, init_variables
from nas.config import FinetuneConfig, TrainConfig
from nas.errors import ConfigError
from nas.locks import exclusive
from nas.paths import baseline_dir
from nas.training.data import Dataset
from nas.training.evaluate import evaluate
from nas.training.finetune import make_trainer
from search_spaces.graph import ModelGraph
from search_spaces.space import Candidate


@dataclass(frozen=True, kw_only=True)
class Baseline:
    """A trained float model in folded form, with its accuracies."""

    params: dict[str, Any]
    val_accuracy: float
    test_accuracy: float
    cache_dir: Path
    from_cache: bool


def baseline_key(graph: ModelGraph, dataset: Dataset, config: TrainConfig, weights: str | None = None) -> str:
    """Content hash identifying a baseline: spec, data arrays, and the training settings or the given weights."""
    source: Any = (
        asdict(config.resolved(graph.spec.train_learning_rate)) if weights is None else _file_digest(Path(weights))
    )
    identity = json.dumps(
        {"spec": graph.spec.to_json(), "data": dataset.fingerprint(), "train": source}, sort_keys=True
    )
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise ConfigError(f"the model's weights file {str(path)!r} is gone; rerun `nas search` with --model") from None


def cached_baseline(
    graph: ModelGraph, dataset: Dataset, config: TrainConfig, *, results_dir: Path, weights: str | None = None
) -> Baseline | None:
    """The baseline these inputs trained before, or None when its cache is gone (nothing is trained)."""
    cache_dir = baseline_dir(results_dir, baseline_key(graph, dataset, config, weights))
    if not ((cache_dir / "meta.json").exists() and (cache_dir / "params.npz").exists()):
        return None
    try:
        meta = json.loads((cache_dir / "meta.json").read_text())
        params = load_tree(cache_dir / "params.npz")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # damaged: treated as absent, so rebuilt
        return None
    return Baseline(
        params=params,
        val_accuracy=meta["val_accuracy"],
        test_accuracy=meta["test_accuracy"],
        cache_dir=cache_dir,
        from_cache=True,
    )


def train_baseline(
    graph: ModelGraph,
    dataset: Dataset,
    config: TrainConfig,
    *,
    results_dir: Path,
    progress: Callable[[int, int], None] | None = None,
    weights: str | None = None,
) -> Baseline:
    """Returns the cached baseline for these inputs, training (and caching) it first if needed.

    With ``weights`` (folded params saved by ``save_tree``, as a discovered user model stores them) the
    baseline is those weights: they are evaluated, never trained.
    """
    cached = cached_baseline(graph, dataset, config, results_dir=results_dir, weights=weights)
    if cached is not None:
        return cached
    cache_dir = baseline_dir(results_dir, baseline_key(graph, dataset, config, weights))
    # Workers that race here train it once: the first holds the lock, the others then find its cache.
    with exclusive(cache_dir.with_name(f"{cache_dir.name}.lock")):
        cached = cached_baseline(graph, dataset, config, results_dir=results_dir, weights=weights)
        if cached is not None:
            return cached
        return _build_baseline(graph, dataset, config, cache_dir, progress, weights)


def _build_baseline(
    graph: ModelGraph,
    dataset: Dataset,
    config: TrainConfig,
    cache_dir: Path,
    progress: Callable[[int, int], None] | None,
    weights: str | None,
) -> Baseline:
    """Trains (or loads the given weights), evaluates and caches the baseline (the caller holds the lock)."""
    start = time.perf_counter()
    config = config.resolved(graph.spec.train_learning_rate)
    params = (
        fold_batchnorm(graph, _fit(graph, dataset, config, progress)) if weights is None else load_tree(Path(weights))
    )
    trainer = make_trainer(graph, FinetuneConfig(steps=0))
    identity = build_compression(graph, params, Candidate.uncompressed(graph))
    val = evaluate(trainer, params, identity, dataset.x_val, dataset.y_val).accuracy
    test = evaluate(trainer, params, identity, dataset.x_test, dataset.y_test).accuracy
    save_tree(cache_dir / "params.npz", params)
    meta = {
        "model": graph.spec.name,
        "dataset": dataset.name,
        "train_config": asdict(config) if weights is None else None,
        "weights": weights,
        "val_accuracy": val,
        "test_accuracy": test,
        "train_seconds": round(time.perf_counter() - start, 2),
    }
    atomic_write_bytes(cache_dir / "meta.json", lambda h: h.write(json.dumps(meta, indent=1).encode()))
    return Baseline(params=params, val_accuracy=val, test_accuracy=test, cache_dir=cache_dir, from_cache=False)


def _fit(graph: ModelGraph, dataset: Dataset, config: TrainConfig, progress) -> dict[str, Any]:
    model = SpecNet(graph=graph)
    variables = init_variables(graph, config.seed)
    steps_per_epoch = max(1, len(dataset.x_train) // config.batch_size)
    total = steps_per_epoch * config.epochs
    schedule = optax.cosine_decay_schedule(config.rate(graph.spec.train_learning_rate), total)
    optimizer = optax.adamw(schedule, weight_decay=config.weight_decay)
    opt_state = optimizer.init(variables["params"])

    @jax.jit
    def step(params, batch_stats, opt_state, x, y):
        def loss_fn(p):
            logits, state = model.apply(
                {"params": p, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"]
            )
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), state

        (_, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state.get("batch_stats", batch_stats), opt_state

    params, stats = variables["params"], variables.get("batch_stats", {})
    x_all, y_all = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
    rng = np.random.default_rng(config.seed)
    for epoch in range(config.epochs):
        order = rng.permutation(len(dataset.x_train))
        for i in range(steps_per_epoch):
            index = jnp.asarray(order[i * config.batch_size : (i + 1) * config.batch_size])
            params, stats, opt_state = step(params, stats, opt_state, x_all[index], y_all[index])
        if progress is not None:
            progress(epoch + 1, config.epochs)
    return {"params": params, "batch_stats": stats}
