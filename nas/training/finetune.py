"""Compiled train / predict / calibrate functions for the folded model, shared by every trial of a study.

Masks, bit widths and ranges are arguments (arrays of fixed shapes), so each function compiles once per
model and dataset shape; ``Trainer.trace_counts`` records how often each was traced (= compiled).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nas.compress.compression import apply_masks, with_ranges
from nas.compress.models import Compression, SpecNet
from nas.config import FinetuneConfig
from nas.errors import TrialFailed
from search_spaces.graph import ModelGraph


@dataclass(frozen=True, kw_only=True)
class Trainer:
    """The compiled functions of one folded model; build with ``make_trainer``."""

    graph: ModelGraph
    config: FinetuneConfig
    optimizer: optax.GradientTransformation
    start: Callable[..., Any]
    train_step: Callable[..., Any]
    logits_batch: Callable[..., Any]
    calibrate_batch: Callable[..., Any]
    trace_counts: Counter = field(default_factory=Counter)


def make_trainer(graph: ModelGraph, config: FinetuneConfig) -> Trainer:
    """Builds the jitted functions for the folded form of ``graph``."""
    model = SpecNet(graph=graph, folded=True)
    # Cosine decay to zero over the K steps: a high start recovers from pruning quickly, the tail settles.
    optimizer = optax.adam(optax.cosine_decay_schedule(config.learning_rate, max(config.steps, 1)))
    counts: Counter = Counter()

    def loss_fn(params, compression, x, y):
        logits = model.apply({"params": params}, x, compression=compression)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def start(params, compression):
        counts["start"] += 1
        masked = apply_masks(params, compression)
        return masked, optimizer.init(masked)

    def train_step(params, opt_state, compression, x_all, y_all, index):
        counts["train_step"] += 1  # runs at trace time only
        loss, grads = jax.value_and_grad(loss_fn)(params, compression, x_all[index], y_all[index])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = apply_masks(optax.apply_updates(params, updates), compression)
        return params, opt_state, loss

    def logits_batch(params, compression, x):
        counts["predict"] += 1
        return model.apply({"params": params}, x, compression=compression)

    def calibrate_batch(params, compression, x):
        counts["calibrate"] += 1
        _, state = model.apply({"params": params}, x, compression=compression, calibrate=True, mutable=["ranges"])
        return {key: value[0] for key, value in state["ranges"].items()}

    return Trainer(
        graph=graph,
        config=config,
        optimizer=optimizer,
        start=jax.jit(start),
        train_step=jax.jit(train_step, donate_argnums=(0, 1)),
        logits_batch=jax.jit(logits_batch),
        calibrate_batch=jax.jit(calibrate_batch),
        trace_counts=counts,
    )


def calibrate(trainer: Trainer, params: dict[str, Any], compression: Compression, x: Any) -> Compression:
    """``compression`` with activation ranges measured on ``x`` (masks and weight quantization applied)."""
    size = min(trainer.config.calibration_size, len(x))
    ranges = trainer.calibrate_batch(params, compression, jnp.asarray(x[:size]))
    return with_ranges(compression, ranges)


def logits(trainer: Trainer, params: dict[str, Any], compression: Compression, x: np.ndarray) -> np.ndarray:
    """Model outputs for ``x``, in fixed-size (padded) batches so one compilation serves any length."""
    batch = trainer.config.eval_batch_size
    out = []
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        padded = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), chunk.dtype)])
        out.append(np.asarray(trainer.logits_batch(params, compression, jnp.asarray(padded)))[: len(chunk)])
    return np.concatenate(out) if out else np.zeros((0, trainer.graph.num_classes), np.float32)


def predict(trainer: Trainer, params: dict[str, Any], compression: Compression, x: np.ndarray) -> np.ndarray:
    """Predicted labels for ``x`` (the first class among equal top outputs)."""
    return logits(trainer, params, compression, x).argmax(axis=1)


def finetune(
    trainer: Trainer,
    params: dict[str, Any],
    compression: Compression,
    x_train: jax.Array,
    y_train: jax.Array,
    *,
    seed: int,
    steps: int | None = None,
) -> tuple[dict[str, Any], Compression]:
    """Quantization-aware, sparsity-preserving fine-tuning; returns params and recalibrated compression.

    Ranges are calibrated before training (so fake quantization is active from the first step) and again
    after it, since fine-tuning moves activations; the final ranges are the ones evaluated and exported.
    """
    steps = trainer.config.steps if steps is None else steps
    params, opt_state = trainer.start(params, compression)  # fresh buffers: the train step donates its inputs
    compression = calibrate(trainer, params, compression, x_train)
    if steps == 0:
        return params, compression
    rng = np.random.default_rng(seed)
    batch = min(trainer.config.batch_size, len(x_train))
    # int32 numpy indices go to the compiled step through its fast path; a jnp conversion per step would
    # dispatch an eager int64 -> int32 op and cost a measurable share of the trial.
    indices = np.stack([rng.choice(len(x_train), size=batch, replace=False) for _ in range(steps)]).astype(np.int32)
    loss = jnp.zeros(())
    for index in indices:
        params, opt_state, loss = trainer.train_step(params, opt_state, compression, x_train, y_train, index)
    last_loss = float(loss)  # one read per candidate; NaN weights would score as a constant guess
    if not np.isfinite(last_loss):
        raise TrialFailed(
            f"fine-tuning diverged (loss {last_loss} after {steps} steps at learning rate "
            f"{trainer.config.learning_rate:g})"
        )
    return params, calibrate(trainer, params, compression, x_train)
