"""Everything a search needs, resolved from a ``SearchConfig``: validated first, then trained and compiled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from latency_models.device import DeviceProfile, load_device
from latency_models.layered import LayeredCostModel
from latency_models.registry import cost_model
from latency_models.runtimes import runnable_precisions, runtime_for
from latency_models.size import layer_sizes
from nas.compress.compression import build_compression
from nas.compress.float_regions import load_spec
from nas.config import SearchConfig
from nas.errors import ConfigError
from nas.objectives import term
from nas.runtime.export import CALIBRATION_EXAMPLES, export_candidate
from nas.runtime.host_timing import HostTiming
from nas.training.data import Dataset, load_dataset
from nas.training.evaluate import evaluate
from nas.training.finetune import Trainer, finetune, make_trainer, teacher_targets
from nas.training.learning_rate import RateChoice, chosen_learning_rate
from nas.training.train import Baseline, train_baseline
from search_spaces.graph import ModelGraph, analyze
from search_spaces.space import Candidate, LayerPolicy, SearchSpace
from search_spaces.techniques.channel_keep import CHANNEL_NORMS


@dataclass(frozen=True, kw_only=True)
class Problem:
    """The validated, cheap part of a search: model graph, search space and data."""

    config: SearchConfig
    graph: ModelGraph
    space: SearchSpace
    dataset: Dataset
    device: DeviceProfile
    cost_model: LayeredCostModel | None  # None when no objective or budget needs a device figure


@dataclass(frozen=True, kw_only=True)
class ModelContext:
    """A problem plus its compiled functions: enough to score and export saved trials, with no baseline."""

    problem: Problem
    trainer: Trainer

    @property
    def graph(self) -> ModelGraph:
        """The model graph."""
        return self.problem.graph

    @property
    def config(self) -> SearchConfig:
        """The search configuration."""
        return self.problem.config


@dataclass(frozen=True, kw_only=True)
class SearchContext(ModelContext):
    """A model context plus the trained baseline and the training data on the device: what trials need."""

    baseline: Baseline
    baseline_val_per_class: tuple[float, ...]  # what --max-class-drop compares each candidate with
    finetune_rate: RateChoice
    x_train: jax.Array
    targets: jax.Array  # what fine-tuning trains toward: the baseline's output distribution, or the labels
    results_dir: Path
    host_timing: HostTiming | None = None  # times each trial's file here (``host_latency`` measured)


def resolve_problem(config: SearchConfig, *, data_dir: Path | None = None) -> Problem:
    """Loads and checks spec, space and data; raises a user error before anything is written."""
    spec = load_spec(config.model, width_multiplier=config.width_multiplier)
    # The study stores the rate its baseline trains at, so resuming under another rate is refused.
    config = replace(config, train=config.train.resolved(spec.train_learning_rate))
    dataset = load_dataset(config.dataset, data_dir=data_dir)
    graph = analyze(spec, dataset.input_shape, dataset.num_classes)
    device = load_device(config.device)
    if config.host_latency == "measured" and not device.measurable_here:
        raise ConfigError(
            f"--host-latency measured times each trial on this machine, and {device.name} is not measured here "
            "(its figures come from its profile); drop the flag or search --device host"
        )
    base_space = SearchSpace.from_dict(config.space) if config.space else SearchSpace()
    # The device (and the runtime standing in for it here) decides which precisions exist; a knob no chosen
    # figure rewards is not searched.
    space = base_space.with_model_rules(spec.rules).restricted_to(runnable_precisions(device))
    if config.snap_channels:  # a count short of the device's channel block costs the whole block
        space = space.snapped_to(device.channel_granule)
    if not config.searches_sparsity:
        space = space.without_sparsity()
    if config.channel_norm not in CHANNEL_NORMS:
        raise ConfigError(f"unknown channel norm {config.channel_norm!r}; use one of {', '.join(CHANNEL_NORMS)}")
    check_budgets_reachable(config.budgets, graph, space)
    costs = cost_model(config.device, config.kernel_set) if config.uses_device else None
    return Problem(config=config, graph=graph, space=space, dataset=dataset, device=device, cost_model=costs)


def with_device_limits(budgets: dict[str, float], device: DeviceProfile) -> dict[str, float]:
    """``budgets`` plus the device's RAM and flash limits where no budget bounds those terms already: a device's
    memory is a hard constraint by default (a budget the user set, tighter or looser, wins)."""
    limits = {"ram_bytes": device.ram_bytes, "flash_bytes": device.flash_bytes}
    return {**{name: float(limit) for name, limit in limits.items() if limit is not None}, **budgets}


def check_budgets_reachable(budgets: dict[str, float], graph: ModelGraph, space: SearchSpace) -> None:
    """Refuses a budget that no candidate of the space can meet (where the term has a computable lower bound)."""
    bounds = {"stored_bytes": lambda: smallest_stored_bytes(graph, space)}
    for name, limit in budgets.items():
        if name not in bounds:
            continue
        lowest = bounds[name]()
        if lowest > limit:
            cost = term(name)
            raise ConfigError(
                f"{cost.budget_flag} {cost.budget_display(limit):g} is impossible: the cheapest candidate of this "
                f"space has {cost.label} {cost.format(lowest)}; raise the budget or widen the space"
            )


def smallest_stored_bytes(graph: ModelGraph, space: SearchSpace) -> int:
    """Stored size of the smallest candidate the space allows (lowest keep ratios, cheapest precision)."""
    keeps = {
        group: min(space.choices_for(graph.layer(leader)).keep_ratios())
        for group in graph.prunable_groups
        if (leader := graph.leader_of(group)) is not None
    }
    options = [
        [
            LayerPolicy(sparsity=0.0, channel_keep=keeps.get(layer.out_group, 1.0), weight_bits=w, activation_bits=a)
            for w, a in space.choices_for(layer).precisions
        ]
        for layer in graph.compressible
    ]
    names = [layer.name for layer in graph.compressible]
    first = [opts[0] for opts in options]
    total = 0
    # A layer's stored bytes depend only on its own precision and the keep ratios, so each layer's cheapest
    # precision can be found with the other layers held fixed.
    for index, layer_options in enumerate(options):
        sizes = []
        for option in layer_options:
            policies = [*first[:index], option, *first[index + 1 :]]
            candidate = Candidate(policies=tuple(zip(names, policies, strict=True)))
            sizes.append(layer_sizes(graph, candidate)[index].total_bytes)
        total += min(sizes)
    return total


def build_model_context(problem: Problem) -> ModelContext:
    """Compiles the scoring functions of ``problem``; never trains (reports and exports use saved trials)."""
    return ModelContext(problem=problem, trainer=make_trainer(problem.graph, problem.config.finetune))


def build_context(
    problem: Problem,
    *,
    results_dir: Path,
    progress: Callable[[int, int], None] | None = None,
    finetune_rate: RateChoice | None = None,
) -> SearchContext:
    """Trains (or loads) the baseline and compiles the fine-tuning functions; ``finetune_rate`` (a resumed
    study's own) is used as it is, else the rate is the config's or the sweep's."""
    baseline = train_baseline(
        problem.graph,
        problem.dataset,
        problem.config.train,
        results_dir=results_dir,
        progress=progress,
        weights=problem.config.weights,
    )
    params: dict[str, Any] = jax.tree_util.tree_map(jnp.asarray, baseline.params)
    trainer = make_trainer(problem.graph, problem.config.finetune)
    identity = build_compression(problem.graph, params, Candidate.uncompressed(problem.graph))
    dataset = problem.dataset
    per_class = evaluate(trainer, params, identity, dataset.x_val, dataset.y_val).per_class
    x_train = jnp.asarray(dataset.x_train)
    if problem.config.finetune.targets == "teacher":
        targets = teacher_targets(trainer, params, identity, dataset.x_train)
    else:
        targets = jnp.asarray(dataset.y_train)
    rate = finetune_rate or chosen_learning_rate(
        trainer,
        problem.graph,
        params,
        (x_train, targets, dataset.x_val, dataset.y_val),
        cache_dir=baseline.cache_dir,
        seed=problem.config.seed,
    )
    return SearchContext(
        problem=problem,
        baseline=Baseline(
            params=params,
            val_accuracy=baseline.val_accuracy,
            test_accuracy=baseline.test_accuracy,
            cache_dir=baseline.cache_dir,
            from_cache=baseline.from_cache,
        ),
        baseline_val_per_class=per_class,
        finetune_rate=rate,
        trainer=trainer,
        x_train=x_train,
        targets=targets,
        results_dir=results_dir,
    )


def with_host_timing(context: SearchContext, reference_ms: float | None = None) -> SearchContext:
    """``context`` with the timer of its trials' files when its study measures the host in the loop
    (``host_latency`` measured and a latency to cost); the reference is timed now unless its figure at the
    run's start is given (a worker of a run the main process started)."""
    model = context.problem.cost_model
    if context.config.host_latency != "measured" or model is None:
        return context
    reference = timing_reference(context)
    runtime, threads = runtime_for(model.device), model.device.threads
    timing = HostTiming.start(runtime, model.kernel_set, threads, reference, reference_ms=reference_ms)
    return replace(context, host_timing=timing)


def timing_reference(context: SearchContext) -> bytes:
    """The reference model of the host timed in the loop: the study's uniform int8 candidate, calibrated and
    exported from the baseline (the same file for every worker and every rerun of the study)."""
    graph, params = context.graph, context.baseline.params
    uniform = Candidate.uniform(graph, weight_bits=8, activation_bits=8)
    compression = build_compression(graph, params, uniform)
    params, compression = finetune(
        context.trainer, params, compression, context.x_train, context.targets, seed=0, steps=0
    )
    calibration = context.problem.dataset.x_train[:CALIBRATION_EXAMPLES]
    return export_candidate(graph, params, compression, uniform, calibration).content
