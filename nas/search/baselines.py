"""The alternatives a user would pick instead of searching, built, fine-tuned and costed exactly as trials are.

- ``fp32``: the uncompressed model;
- ``int8_ptq``: every layer int8, activation ranges calibrated, no training (post-training quantization);
- ``int8_qat``: every layer int8, fine-tuned with the trials' quantization-aware fine-tuning;
- ``prune50_int8``: half the weights of every layer pruned by magnitude, int8, fine-tuned;
- ``scratch_w<f>_fp32`` / ``scratch_w<f>_int8``: the same family at ``f`` times the width, trained from scratch
  (the "compressed equivalents built from scratch"), then as is and int8-fine-tuned; a user's model with a
  float region has none (the region's traced function takes one width only).

A point the device cannot run (a precision it does not offer) is kept with the reason instead of figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from nas.search.context import SearchContext, build_context, resolve_problem
from nas.search.objective import evaluate_candidate
from nas.training.evaluate import evaluate
from nas.training.robustness import degraded_sets, robust_accuracy
from search_spaces.space import Candidate, LayerPolicy

SCRATCH_WIDTHS = (0.5, 0.25)


@dataclass(frozen=True, kw_only=True)
class BaselinePoint:
    """One baseline: what it is, its figures (as a trial records them) and its test accuracy."""

    name: str
    description: str
    width_multiplier: float
    candidate: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    test_accuracy: float | None = None
    robust_accuracy: dict[str, float] | None = None  # on degraded test inputs (nas.training.robustness)
    unrunnable: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def pruned_int8(candidate: Candidate, sparsity: float) -> Candidate:
    """``candidate``'s layers at ``sparsity`` unstructured magnitude pruning and int8."""
    policy = LayerPolicy(sparsity=sparsity, channel_keep=1.0, weight_bits=8, activation_bits=8)
    return Candidate(policies=tuple((name, policy) for name, _ in candidate.policies))


def baseline_points(ctx: SearchContext, widths: tuple[float, ...] = SCRATCH_WIDTHS) -> list[BaselinePoint]:
    """Every baseline of ``ctx``'s problem, fine-tuned with its fine-tuning settings and costed on its device."""
    graph = ctx.graph
    uniform = Candidate.uniform(graph, weight_bits=8, activation_bits=8)
    width = ctx.config.width_multiplier or 1.0
    points = [
        _point(ctx, "fp32", "uncompressed float32", Candidate.uncompressed(graph), train=False, width=width),
        _point(ctx, "int8_ptq", "uniform int8, post-training (calibrated, no training)", uniform, False, width),
        _point(ctx, "int8_qat", "uniform int8, quantization-aware fine-tuning", uniform, True, width),
        _point(ctx, "prune50_int8", "50% magnitude pruning + int8, fine-tuned", pruned_int8(uniform, 0.5), True, width),
    ]
    # A float region's traced function expects its full input width: such a model has no narrower variant.
    for factor in widths if not graph.float_regions else ():
        # A user's model at another width has no weights: it is trained from scratch like a family.
        smaller = replace(ctx.config, width_multiplier=width * factor, weights=None)
        small = build_context(resolve_problem(smaller), results_dir=ctx.results_dir)
        label = f"scratch_w{factor:g}"
        scratch = f"{factor:g}x width, trained from scratch"
        points += [
            _point(small, f"{label}_fp32", scratch, Candidate.uncompressed(small.graph), False, width * factor),
            _point(
                small,
                f"{label}_int8",
                f"{scratch}, int8 fine-tuned",
                Candidate.uniform(small.graph, weight_bits=8, activation_bits=8),
                True,
                width * factor,
            ),
        ]
    return points


def _point(
    ctx: SearchContext, name: str, description: str, candidate: Candidate, train: bool, width: float
) -> BaselinePoint:
    start = time.perf_counter()
    common: dict[str, Any] = {
        "name": name,
        "description": description,
        "width_multiplier": width,
        "candidate": candidate.to_dict(),
    }
    unrunnable = ctx.problem.device.unrunnable(ctx.graph, candidate)
    if unrunnable:
        return BaselinePoint(**common, unrunnable=f"{ctx.problem.device.name} does not run {', '.join(unrunnable)}")
    result = evaluate_candidate(ctx, candidate, seed=ctx.config.seed, train=train)
    dataset = ctx.problem.dataset
    test = evaluate(ctx.trainer, result.params, result.compression, dataset.x_test, dataset.y_test)
    sets = degraded_sets(dataset.x_test, dataset.x_train)
    robust = robust_accuracy(ctx.trainer, result.params, result.compression, sets, dataset.y_test)
    metrics: dict[str, Any] = {name: _plain(value) for name, value in result.metrics.items()}
    metrics["finetuned"] = result.finetuned
    if result.device_cost is not None:
        metrics["provenance"] = result.device_cost.provenance()
        metrics["device"] = result.device_cost.device
    return BaselinePoint(
        **common,
        metrics=metrics,
        test_accuracy=test.accuracy,
        robust_accuracy=robust,
        seconds=round(time.perf_counter() - start, 2),
    )


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, (float, np.floating, int, np.integer)) else value
