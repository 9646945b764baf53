"""A sensitivity-based allocation in the style of HAWQ: measure once how much accuracy each knob costs, then
assign bits and keep ratios under a budget without searching.

Sensitivity: from the most accurate setting (every layer at its widest precision, every channel kept), each
knob (a layer's precision, a channel group's keep ratio) is moved alone to each of its values and the model is
scored on the validation split with calibrated ranges and no fine-tuning; the accuracy it loses is that
value's sensitivity (HAWQ ranks by Hessian trace; measured loss is what that trace approximates, and it is
cheap here). Allocation: from the most accurate setting, while a cost limit is exceeded, take the move with the
most cost saved (relative to the exceeded limits) per unit of sensitivity added, costed on the study's device
by the same cost model as the trials (a greedy rule in place of HAWQ-V3's integer program, which needs costs
that add up per layer; precision boundaries make ours not). The result is fine-tuned like any trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from latency_models.cost import Cost
from nas.objectives import budget_violations, term
from nas.search.context import SearchContext
from nas.search.objective import (
    device_cost,
    estimated_compressed_bytes,
    evaluate_candidate,
    metrics_before_training,
)
from search_spaces.space import Candidate, space_knobs, suggest_candidate
from search_spaces.techniques import technique_of_param


@dataclass(frozen=True, kw_only=True)
class Knobs:
    """The knobs an allocation sets (Optuna parameter names, as trials name them) and their values."""

    options: dict[str, tuple[Any, ...]]

    @property
    def reference(self) -> dict[str, Any]:
        """The most accurate setting: each technique's most accurate value (widest precisions, every channel
        kept, no sparsity)."""
        return {name: technique_of_param(name).reference(values) for name, values in self.options.items()}


def knobs(ctx: SearchContext, *, every_technique: bool = False) -> Knobs:
    """Every knob the study's space offers with more than one value, from the registered techniques. A
    technique no device saves latency by (unstructured sparsity) stays at its reference value unless
    ``every_technique``."""
    graph, space = ctx.graph, ctx.problem.space
    options: dict[str, tuple[Any, ...]] = {}
    for layer, technique in space_knobs(graph):
        values = technique.values(space.choices_for(layer))
        if len(values) > 1:
            moved = every_technique or technique.allocated_by_default
            options[technique.param_name(layer)] = tuple(values) if moved else (technique.reference(values),)
    return Knobs(options=options)


def candidate_of(ctx: SearchContext, params: dict[str, Any]) -> Candidate:
    """The candidate a setting of the knobs describes."""
    return suggest_candidate(optuna.trial.FixedTrial(params), ctx.graph, ctx.problem.space)


def measure_sensitivity(ctx: SearchContext, knobs_: Knobs) -> dict[tuple[str, Any], float]:
    """Validation accuracy lost by moving each knob alone to each value (no fine-tuning)."""
    reference = knobs_.reference
    base = evaluate_candidate(ctx, candidate_of(ctx, reference), seed=ctx.config.seed, train=False).val.accuracy
    sensitivity = {(name, value): 0.0 for name, value in reference.items()}
    for name, values in knobs_.options.items():
        for value in values:
            if value == reference[name]:
                continue
            candidate = candidate_of(ctx, {**reference, name: value})
            accuracy = evaluate_candidate(ctx, candidate, seed=ctx.config.seed, train=False).val.accuracy
            sensitivity[(name, value)] = base - accuracy
    return sensitivity


def _metrics(ctx: SearchContext, params: dict[str, Any]) -> dict[str, float]:
    candidate = candidate_of(ctx, params)
    cost: Cost | None = device_cost(ctx, candidate)
    metrics = metrics_before_training(ctx, candidate, cost)
    if "compressed_bytes" in (*ctx.config.objectives, *ctx.config.budgets):  # the allocation works on estimates
        metrics["compressed_bytes"] = estimated_compressed_bytes(ctx, candidate)
    return metrics


def allocate(
    ctx: SearchContext, knobs_: Knobs, sensitivity: dict[tuple[str, Any], float], limits: dict[str, float]
) -> dict[str, Any] | None:
    """The knob setting the greedy rule reaches within ``limits`` (raw units per cost term), or None when no
    sequence of cheaper moves gets there."""
    # One validation example is the smallest accuracy change measurable: below it, moves rank by cost saved.
    floor = 1.0 / len(ctx.problem.dataset.y_val)
    current = dict(knobs_.reference)
    over = {n: v for n, v in budget_violations(limits, _metrics(ctx, current)).items() if v > 0}
    while over:
        best, best_score, best_over = None, 0.0, over
        for name, values in knobs_.options.items():
            for value in values:
                if value == current[name]:
                    continue
                trial = {**current, name: value}
                after = budget_violations(limits, _metrics(ctx, trial))
                saved = sum(over[n] - after[n] for n in over)
                if saved <= 0:
                    continue
                added = sensitivity[(name, value)] - sensitivity[(name, current[name])]
                score = saved / max(added, floor)
                if score > best_score:
                    best, best_score, best_over = trial, score, {n: v for n, v in after.items() if v > 0}
        if best is None:
            return None
        current, over = best, best_over
    return current


def allocation_points(
    ctx: SearchContext, budgets: list[dict[str, float]]
) -> list[tuple[dict[str, float], Candidate | None, dict[str, Any] | None]]:
    """For each budget: the allocated candidate fine-tuned like a trial, with its metrics (None where the rule
    cannot meet the budget). Sensitivity is measured once for all budgets."""
    knobs_ = knobs(ctx)
    sensitivity = measure_sensitivity(ctx, knobs_)
    points: list[tuple[dict[str, float], Candidate | None, dict[str, Any] | None]] = []
    for limits in budgets:
        params = allocate(ctx, knobs_, sensitivity, limits)
        if params is None:
            points.append((limits, None, None))
            continue
        candidate = candidate_of(ctx, params)
        result = evaluate_candidate(ctx, candidate, seed=ctx.config.seed, train=True)
        points.append((limits, candidate, result.metrics))
    return points


ANCHOR_PRECISION = "w8a8"


def uniform_int8_params(ctx: SearchContext) -> dict[str, Any]:
    """The classic compression as trial parameters: every layer at int8 weights and activations where its
    rules allow it (its widest precision where not), every channel kept, no sparsity.

    Every new study runs it first: in a space of dozens of per-layer knobs most random settings are far worse
    than this one (``benchmarks/families.py``, MobileNet on digits: of 30 trials only this one came within 2
    points of the baseline), and the sampler learns faster from a good point; the front always holds the
    candidate a user would compare against.
    """
    knobs_ = knobs(ctx)
    params = knobs_.reference
    for name, values in knobs_.options.items():
        if name.endswith(".precision") and ANCHOR_PRECISION in values:
            params[name] = ANCHOR_PRECISION
    return params


WARM_START_FRACTIONS = (0.75, 0.5, 0.35, 0.25)  # of the most accurate setting's cost on the first cost objective


def warm_start_params(ctx: SearchContext) -> list[dict[str, Any]]:
    """Trial parameters to seed a search with: the allocations under budgets spread below the most accurate
    setting's cost on the study's first cost objective (and within its own budgets), distinct, cheapest last."""
    costs = [name for name in ctx.config.objectives if name != "accuracy"]
    knobs_ = knobs(ctx)
    sensitivity = measure_sensitivity(ctx, knobs_)
    reference = _metrics(ctx, knobs_.reference)
    first = term(costs[0])
    seeds: list[dict[str, Any]] = []
    for fraction in WARM_START_FRACTIONS:
        limits = {**ctx.config.budgets, costs[0]: reference[first.metric] * fraction}
        params = allocate(ctx, knobs_, sensitivity, limits)
        if params is not None and params not in seeds:
            seeds.append(params)
    return seeds
