"""Compiled train / predict / calibrate functions for the folded model, shared by every trial of a study.

Masks, bit widths, ranges and the learning rate are arguments (arrays of fixed shapes), so each function
compiles once per model and dataset shape; ``Trainer.trace_counts`` records how often each was traced.

The schedule is a linear warm-up over the first tenth of the steps, then cosine decay to zero: fine-tuning
starts from trained weights, and Adam's first steps (normalized by a second-moment estimate of one gradient)
move every weight by about the full learning rate whatever its gradient, which is what a deep folded network
cannot absorb. The rate itself is chosen per model (``nas.training.learning_rate``): a rate that recovers the
two-layer CNN quickly (2e-2) took ResNet-8's int8 model from 0.983 to 0.415 in the same 300 steps. The loss
is cross-entropy against labels or, by default, against the uncompressed model's output distribution
(``teacher_targets``: why, there).
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

from nas.compress.compression import apply_masks, uncompressed_like, with_ranges
from nas.compress.models import Compression, SpecNet
from nas.config import FinetuneConfig
from nas.errors import TrialFailed
from search_spaces.graph import ModelGraph

WARMUP_FRACTION = 0.1
FALLBACK_LEARNING_RATE = 1e-3  # for a caller that neither sets a rate nor chose one (safe from trained weights)


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
    statistics_batch: Callable[..., Any]
    trace_counts: Counter = field(default_factory=Counter)


def make_trainer(graph: ModelGraph, config: FinetuneConfig) -> Trainer:
    """Builds the jitted functions for the folded form of ``graph``."""
    model = SpecNet(graph=graph, folded=True)
    optimizer = fine_tuning_optimizer(config.steps)
    counts: Counter = Counter()

    def loss_fn(params, compression, x, y):
        logits = model.apply({"params": params}, x, compression=compression)
        if y.ndim == 2:  # soft targets: the uncompressed model's output distribution
            return optax.softmax_cross_entropy(logits, y).mean()
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def start(params, compression):
        counts["start"] += 1
        masked = apply_masks(params, compression)
        return masked, optimizer.init(masked)

    def train_step(params, opt_state, compression, x_all, y_all, index, learning_rate):
        counts["train_step"] += 1  # runs at trace time only
        loss, grads = jax.value_and_grad(loss_fn)(params, compression, x_all[index], y_all[index])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        updates = jax.tree_util.tree_map(lambda u: -learning_rate * u, updates)
        params = apply_masks(optax.apply_updates(params, updates), compression)
        return params, opt_state, loss

    def logits_batch(params, compression, x):
        counts["predict"] += 1
        return model.apply({"params": params}, x, compression=compression)

    def calibrate_batch(params, compression, x):
        counts["calibrate"] += 1
        _, state = model.apply({"params": params}, x, compression=compression, calibrate=True, mutable=["ranges"])
        return {key: value[0] for key, value in state["ranges"].items()}

    def statistics_batch(params, compression, x, targets):
        counts["statistics"] += 1
        _, state = model.apply(
            {"params": params}, x, compression=compression, calibrate=True, statistics=targets, mutable=["statistics"]
        )
        return {key: value[0] for key, value in state.get("statistics", {}).items()}

    return Trainer(
        graph=graph,
        config=config,
        optimizer=optimizer,
        start=jax.jit(start),
        train_step=jax.jit(train_step, donate_argnums=(0, 1)),
        logits_batch=jax.jit(logits_batch),
        calibrate_batch=jax.jit(calibrate_batch),
        statistics_batch=jax.jit(statistics_batch),
        trace_counts=counts,
    )


def fine_tuning_optimizer(steps: int) -> optax.GradientTransformation:
    """Adam on a unit schedule: the learning rate multiplies it inside the step, as a traced value."""
    return optax.chain(optax.scale_by_adam(), optax.scale_by_schedule(unit_schedule(steps)))


def unit_schedule(steps: int) -> optax.Schedule:
    """Linear warm-up to 1 over the first ``WARMUP_FRACTION`` of ``steps``, then cosine decay to 0. The warm-up
    starts at ``1 / (warmup + 1)``, not 0: a first step that moves nothing would be a step wasted."""
    steps = max(steps, 1)
    warmup = max(1, round(WARMUP_FRACTION * steps)) if steps > 1 else 0
    return optax.warmup_cosine_decay_schedule(1.0 / (warmup + 1), 1.0, warmup, steps, end_value=0.0)


def calibrate(trainer: Trainer, params: dict[str, Any], compression: Compression, x: Any) -> Compression:
    """``compression`` with activation ranges measured on ``x`` (masks and weight quantization applied)."""
    size = min(trainer.config.calibration_size, len(x))
    ranges = trainer.calibrate_batch(params, compression, jnp.asarray(x[:size]))
    return with_ranges(compression, ranges)


def adapt_statistics(
    trainer: Trainer, params: dict[str, Any], compression: Compression, x: Any, *, baseline: dict[str, Any]
) -> dict[str, Any]:
    """``params`` (masked) with each BatchNorm layer's output moved, channel by channel, to the mean and std it has
    in the uncompressed ``baseline`` on ``x``: pruning and quantization shift the statistics every later layer
    was trained on, and matching them back (in one pass, layer after layer) is what re-estimating BatchNorm
    statistics does for a pruned network. The correction is folded into each kernel and bias."""
    if not any(node.bn for node in trainer.graph.spec.nodes):
        return params
    batch = jnp.asarray(x[: min(trainer.config.calibration_size, len(x))])
    targets = trainer.statistics_batch(baseline, uncompressed_like(compression), batch, None)
    corrections = trainer.statistics_batch(params, compression, batch, targets)
    adapted = dict(params)
    for key, (scale, shift) in corrections.items():
        name = key.removesuffix("/bn")
        layer = params[name]
        kernel = layer["kernel"]
        bias = layer.get("bias", jnp.zeros_like(scale))
        per_channel = scale.reshape((1,) * (kernel.ndim - 1) + scale.shape)
        adapted[name] = {**layer, "kernel": kernel * per_channel, "bias": bias * scale + shift}
    return adapted


def teacher_targets(trainer: Trainer, params: dict[str, Any], compression: Compression, x: np.ndarray) -> jax.Array:
    """The uncompressed model's output distribution on ``x``: what a candidate is fine-tuned toward by default.

    A trained baseline fits its training set (train accuracy 1.0 on digits), so labels leave a compressed
    candidate little to learn but confidence, and 300 steps of that move weights across int8 rounding
    boundaries at random: MobileNet v1's uniform int8 model lost 1-3 of 287 validation images at every rate
    (``benchmarks/int8_finetune.py``). The teacher's distribution says what quantization or pruning changed
    on every example, including the ones still classified right (knowledge distillation: Hinton et al., 2015;
    for quantized students, Polino et al., "Model compression via distillation and quantization", ICLR 2018,
    and Mishra & Marr, "Apprentice", ICLR 2018). ``compression`` is any of the model's (it is undone here).
    """
    teacher = logits(trainer, params, uncompressed_like(compression), np.asarray(x))
    return jax.nn.softmax(jnp.asarray(teacher), axis=1)


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
    learning_rate: float | None = None,
) -> tuple[dict[str, Any], Compression]:
    """Quantization-aware, sparsity-preserving fine-tuning; returns params and recalibrated compression.

    ``y_train`` holds labels, or one target distribution per example (``teacher_targets``).

    Ranges are calibrated before training (so fake quantization is active from the first step) and again
    after it, since fine-tuning moves activations; the final ranges are the ones evaluated and exported.
    ``learning_rate`` defaults to the config's, else ``FALLBACK_LEARNING_RATE``.
    """
    steps = trainer.config.steps if steps is None else steps
    rate = learning_rate or trainer.config.learning_rate or FALLBACK_LEARNING_RATE
    baseline = params
    params, opt_state = trainer.start(params, compression)  # fresh buffers: the train step donates its inputs
    params = adapt_statistics(trainer, params, compression, x_train, baseline=baseline)
    compression = calibrate(trainer, params, compression, x_train)
    if steps == 0:
        return params, compression
    rng = np.random.default_rng(seed)
    batch = min(trainer.config.batch_size, len(x_train))
    # int32 numpy indices go to the compiled step through its fast path; a jnp conversion per step would
    # dispatch an eager int64 -> int32 op and cost a measurable share of the trial.
    indices = np.stack([rng.choice(len(x_train), size=batch, replace=False) for _ in range(steps)]).astype(np.int32)
    loss = jnp.zeros(())
    rate_array = np.float32(rate)
    for index in indices:
        params, opt_state, loss = trainer.train_step(
            params, opt_state, compression, x_train, y_train, index, rate_array
        )
    # One read per candidate; NaN weights would score as a constant guess. The loss is taken before the last
    # update, so the weights that update wrote are checked too.
    non_finite = sum(jnp.sum(~jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(params))
    last_loss = float(loss) if int(non_finite) == 0 else float("nan")
    if not np.isfinite(last_loss):
        raise TrialFailed(f"fine-tuning diverged (loss {last_loss} after {steps} steps at learning rate {rate:g})")
    return params, calibrate(trainer, params, compression, x_train)
