"""One trial: propose a candidate, cost it, fine-tune it, score it, record everything.

The stored size is exact and known before training, so a candidate over the size budget is never fine-tuned:
it is scored as is (masks and quantization applied, no training) and marked infeasible through Optuna's
constraint mechanism, which steers the sampler away from it at almost no cost.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optuna

from latency_models.correction import MeasuredModel
from latency_models.cost import Cost
from latency_models.errors import CostModelError
from latency_models.keys import boundaries, layer_keys
from latency_models.layered import whole_model
from latency_models.runtimes import runtime_estimating
from latency_models.size import LayerSize, compressed_bytes, layer_sizes, stored_bytes
from nas.checkpoint import load_tree, save_tree
from nas.compress.compression import build_compression, stored_codes
from nas.compress.models import Compression
from nas.errors import ConfigError, TrialFailed
from nas.objectives import AFTER_TRAINING_TERMS, budget_violations, objective_values
from nas.paths import StudyPaths
from nas.runtime.export import CALIBRATION_EXAMPLES, export_candidate
from nas.runtime.measured_models import content_key, remember_measured
from nas.runtime.parity import Parity, runtime_parity
from nas.search.context import SearchContext
from nas.search.record import METRICS_ATTR, ParityRecord, TrialRecord
from nas.search.trial_owner import WORKER_ATTR, worker_identity
from nas.training.evaluate import Accuracy, evaluate, worst_class_drop
from nas.training.finetune import finetune
from nas.training.robustness import degraded_sets, robust_accuracy
from search_spaces.space import Candidate, suggest_candidate
from search_spaces.techniques import TECHNIQUES


@dataclass(frozen=True, kw_only=True)
class CandidateResult:
    """A fine-tuned candidate: its weights, compression arrays, accuracy and size figures."""

    candidate: Candidate
    params: dict[str, Any]
    compression: Compression
    val: Accuracy
    layer_sizes: tuple[LayerSize, ...]
    stored_bytes: int
    compressed_bytes: int
    finetuned: bool  # whether fine-tuning ran (an over-budget candidate is only calibrated)
    recovery: str  # which model the result is: "fine-tuned", or "calibrated" (post-training, kept as better)
    calibrated_accuracy: float  # the candidate's validation accuracy calibrated only, without training
    device_cost: Cost | None
    seconds: dict[str, float]
    max_class_drop: float  # the worst per-class validation accuracy loss against the baseline
    robust_drop: float | None = None  # validation accuracy lost on degraded inputs (when a term asks for it)
    parity: Parity | None = None  # the exported model run in LiteRT (None: not checked)
    predicted_cost: Cost | None = None  # the cost model's, where the device's toolchain costed the file instead

    @property
    def metrics(self) -> dict[str, float]:
        """The figures objective terms read."""
        device = {} if self.device_cost is None else self.device_cost.metrics()
        return {
            "val_accuracy": self.val.accuracy,
            "stored_bytes": float(self.stored_bytes),
            "compressed_bytes": float(self.compressed_bytes),
            "max_class_drop": self.max_class_drop,
            **({} if self.robust_drop is None else {"robust_drop": self.robust_drop}),
            **device,
        }


def device_cost(ctx: SearchContext, candidate: Candidate) -> Cost | None:
    """The candidate's cost on the study's device (None when no objective or budget needs it)."""
    model = ctx.problem.cost_model
    return None if model is None else model.cost(ctx.graph, candidate)


def evaluate_candidate(
    ctx: SearchContext,
    candidate: Candidate,
    *,
    seed: int,
    train: bool = True,
    cost: Cost | None = None,
    keep_better: bool = True,
) -> CandidateResult:
    """Builds masks and quantizers from the baseline, fine-tunes (unless ``train`` is False) and scores.

    The candidate is also scored calibrated only (post-training quantization, no training); with
    ``keep_better`` the result is whichever of the two scores higher on validation, and ``recovery`` says which.
    ``cost`` is the candidate's device cost when the caller already computed it (before deciding to train).
    """
    start = time.perf_counter()
    cost = cost if cost is not None else device_cost(ctx, candidate)
    costed = time.perf_counter()
    compression = build_compression(ctx.graph, ctx.baseline.params, candidate, channel_norm=ctx.config.channel_norm)
    masks_done = time.perf_counter()
    calibrated = _tuned(ctx, compression, seed=seed, steps=0)
    calibrated_done = time.perf_counter()
    kept = calibrated
    if train:
        tuned = _tuned(ctx, compression, seed=seed, steps=None)
        # Fine-tuning that ends below post-training calibration is undone: the trial keeps the better model.
        if not keep_better or tuned[2].accuracy >= calibrated[2].accuracy:
            kept = tuned
    trained = time.perf_counter()
    params, compression, val = kept
    codes = stored_codes(ctx.graph, params, candidate, compression)
    sizes = layer_sizes(ctx.graph, candidate)
    return CandidateResult(
        candidate=candidate,
        params=params,
        compression=compression,
        val=val,
        layer_sizes=sizes,
        stored_bytes=sum(size.total_bytes for size in sizes),
        compressed_bytes=compressed_bytes(ctx.graph, candidate, codes),
        finetuned=train,
        recovery="fine-tuned" if kept is not calibrated else "calibrated",
        calibrated_accuracy=calibrated[2].accuracy,
        device_cost=cost,
        max_class_drop=worst_class_drop(ctx.baseline_val_per_class, val.per_class),
        robust_drop=_robust_drop(ctx, params, compression, val.accuracy),
        seconds={
            "cost": costed - start,
            "masks": masks_done - costed,
            "calibrate": calibrated_done - masks_done,  # calibrated and scored, no training
            "finetune": trained - calibrated_done,  # fine-tuned and scored
            "sizes": time.perf_counter() - trained,
        },
    )


def _tuned(
    ctx: SearchContext, compression: Compression, *, seed: int, steps: int | None
) -> tuple[dict[str, Any], Compression, Accuracy]:
    """The baseline fine-tuned for ``steps`` (0: calibrated only) under ``compression``, with its validation score."""
    params, compression = finetune(
        ctx.trainer,
        ctx.baseline.params,
        compression,
        ctx.x_train,
        ctx.targets,
        seed=seed,
        steps=steps,
        learning_rate=ctx.finetune_rate.learning_rate,
    )
    jax.block_until_ready(params)  # dispatch is asynchronous: without this, training time is booked as evaluation
    dataset = ctx.problem.dataset
    return params, compression, evaluate(ctx.trainer, params, compression, dataset.x_val, dataset.y_val)


def _robust_drop(ctx: SearchContext, params: dict[str, Any], compression: Compression, clean: float) -> float | None:
    """Clean validation accuracy minus the mean over the degraded validation sets, when a term needs it."""
    if "robust_drop" not in (*ctx.config.objectives, *ctx.config.budgets):
        return None
    dataset = ctx.problem.dataset
    sets = degraded_sets(dataset.x_val, dataset.x_train)
    return clean - robust_accuracy(ctx.trainer, params, compression, sets, dataset.y_val)["mean"]


def metrics_before_training(ctx: SearchContext, candidate: Candidate, cost: Cost | None = None) -> dict[str, float]:
    """The budgeted cost metrics of a candidate, known before it is fine-tuned.

    The stored size and the device figures depend only on the candidate. The entropy-coded size depends on
    the fine-tuned weights, so it is judged after fine-tuning only (``AFTER_TRAINING_TERMS``).
    """
    metrics: dict[str, float] = {"stored_bytes": float(stored_bytes(ctx.graph, candidate))}
    if cost is not None:
        metrics.update(cost.metrics())
    return metrics


def estimated_compressed_bytes(ctx: SearchContext, candidate: Candidate) -> float:
    """The entropy-coded size estimated before training, from the masked, quantized baseline weights."""
    compression = build_compression(ctx.graph, ctx.baseline.params, candidate, channel_norm=ctx.config.channel_norm)
    codes = stored_codes(ctx.graph, ctx.baseline.params, candidate, compression)
    return float(compressed_bytes(ctx.graph, candidate, codes))


def within_budgets(ctx: SearchContext, candidate: Candidate, cost: Cost | None = None) -> bool:
    """Whether every budget holds for ``candidate`` before training (an over-budget candidate is not trained)."""
    if not ctx.config.budgets:
        return True
    cost = cost if cost is not None else device_cost(ctx, candidate)
    known = {name: limit for name, limit in ctx.config.budgets.items() if name not in AFTER_TRAINING_TERMS}
    violations = budget_violations(known, metrics_before_training(ctx, candidate, cost))
    return all(v <= 0 for v in violations.values())


PARITY_CONSTRAINT = "runtime_parity"  # 1.0 when the exported candidate diverged from its JAX model in LiteRT


def checked_in_runtime(ctx: SearchContext, result: CandidateResult) -> CandidateResult:
    """``result`` with its parity check: exported and run in LiteRT on the validation split (nothing timed)."""
    dataset = ctx.problem.dataset
    parity = runtime_parity(
        ctx.graph,
        ctx.trainer,
        result.params,
        result.compression,
        result.candidate,
        calibration=dataset.x_train,
        x=dataset.x_val,
        y=dataset.y_val,
    )
    return replace(result, parity=parity, seconds={**result.seconds, "parity": parity.seconds})


def costed_in_loop(ctx: SearchContext, result: CandidateResult) -> CandidateResult:
    """``result`` with its exported file costed where the device's own figures can be had here: timed on this
    host (``host_latency`` measured, ``nas.runtime.host_timing``), or by the device's toolchain (Vela's estimate
    for an Ethos-U NPU, ``Runtime.file_cost``). Those figures replace the prediction, which the record keeps.
    Unchanged where neither applies, or the candidate did not export (its parity check made it infeasible)."""
    model, predicted = ctx.problem.cost_model, result.device_cost
    toolchain = None if model is None else runtime_estimating(model.device)
    if model is None or predicted is None or (ctx.host_timing is None and toolchain is None):
        return result
    if result.parity is not None and result.parity.content is None:
        return result
    start = time.perf_counter()
    content = result.parity.content if result.parity is not None else None
    content = content if content is not None else _exported(ctx, result)
    if ctx.host_timing is not None:
        latency = ctx.host_timing.latency(content)
        remember_timed(ctx, result, content, latency.value)
        energy = latency.scaled(model.device.active_power.watts, "analytic")  # W x ms = mJ, the power analytic
        cost, step = replace(predicted, latency_ms=latency, energy_mj=energy), "timing"
    elif toolchain is not None:
        try:
            cost, step = toolchain_cost(ctx, result, content), "toolchain"
        except CostModelError as err:
            raise TrialFailed(f"{toolchain.name} cannot cost the exported candidate: {err}") from None
    seconds = {**result.seconds, step: time.perf_counter() - start}
    return replace(result, device_cost=cost, predicted_cost=predicted, seconds=seconds)


def toolchain_cost(ctx: SearchContext, result: CandidateResult, content: bytes) -> Cost:
    """The exported file's cost by the device's toolchain, with what it leaves to the system's CPU (the invoke,
    the float conversions, any layer it does not place on the accelerator) from the device's profile."""
    model = ctx.problem.cost_model
    toolchain = None if model is None else runtime_estimating(model.device)
    assert model is not None and toolchain is not None
    on_cpu = set(toolchain.cpu_layers(content, model.device))
    layers = [(layer.name, key) for layer, key in layer_keys(ctx.graph, result.candidate) if layer.name in on_cpu]
    cpu_side = model.parts_of_keys(layers, toolchain.cpu_conversions(boundaries(ctx.graph, result.candidate)))
    return toolchain.file_cost(content, model.device, cpu_side=cpu_side)


def remember_timed(ctx: SearchContext, result: CandidateResult, content: bytes, measured_ms: float) -> None:
    """Keeps a timed file as a measured model of the host's predictor (``nas.runtime.measured_models``)."""
    model, predicted = ctx.problem.cost_model, result.device_cost
    assert model is not None and predicted is not None
    config = ctx.problem.config
    whole = whole_model(
        model.raw_parts(ctx.graph, result.candidate), flash=predicted.flash_bytes, ram=predicted.ram_bytes
    )
    source = f"a search of {config.model} on {config.dataset}, {time.strftime('%Y-%m-%d')}"
    remember_measured(
        model, MeasuredModel(name=content_key(content), model=whole, measured_ms=measured_ms, source=source)
    )


def _exported(ctx: SearchContext, result: CandidateResult) -> bytes:
    """The candidate's ``.tflite``, for a toolchain to cost when no parity check exported it."""
    calibration = ctx.problem.dataset.x_train[:CALIBRATION_EXAMPLES]
    try:
        return export_candidate(ctx.graph, result.params, result.compression, result.candidate, calibration).content
    except Exception as err:  # the converter's refusals come as any exception type
        raise TrialFailed(f"the candidate does not export: {str(err).splitlines()[0] if str(err) else err}") from None


def constraint_name(term_name: str) -> str:
    """Name of the Optuna constraint of a budgeted term (value: excess over the budget / budget)."""
    return f"{term_name}_over_budget"


def save_trial_weights(path: Path, result: CandidateResult) -> None:
    """Saves fine-tuned params, activation ranges and masks (``.npz``, no pickle) for export and reports."""
    save_tree(path, {"params": result.params, "compression": result.compression})


def load_trial_weights(path: Path) -> tuple[dict[str, Any], Compression]:
    """Inverse of ``save_trial_weights``; a missing or damaged file is refused in one line."""
    try:
        tree = load_tree(path)
    except FileNotFoundError:
        raise ConfigError(f"trial weights {path} are missing; run the trial again (a new search trial)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ConfigError(f"trial weights {path} are damaged ({err}); run the trial again") from None
    # A .npz holds no empty dict: a graph with no prunable channel group stores no channel masks at all.
    return tree["params"], {"channel_mask": {}, **tree["compression"]}


def make_objective(ctx: SearchContext, paths: StudyPaths) -> Callable[[optuna.Trial], tuple[float, ...]]:
    """The Optuna objective for ``ctx``: returns the configured objective values of each trial."""
    names = ctx.config.objectives

    def objective(trial: optuna.Trial) -> tuple[float, ...]:
        trial.set_user_attr(WORKER_ATTR, worker_identity())  # lets a resumed run tell a dead worker's trial
        try:
            return run_trial(trial)
        except MemoryError:
            reason = "the candidate does not fit in memory"
        except jax.errors.JaxRuntimeError as err:  # XLA's own out-of-memory and other runtime failures
            reason = f"the runtime failed: {str(err).splitlines()[0]}"
        except TrialFailed as err:
            reason = str(err)
        trial.set_user_attr("fail_reason", reason)
        raise TrialFailed(reason)

    def run_trial(trial: optuna.Trial) -> tuple[float, ...]:
        candidate = suggest_candidate(trial, ctx.graph, ctx.problem.space)
        start = time.perf_counter()
        cost = device_cost(ctx, candidate)
        cost_seconds = time.perf_counter() - start
        train = within_budgets(ctx, candidate, cost)
        result = evaluate_candidate(ctx, candidate, seed=ctx.config.seed + trial.number, train=train, cost=cost)
        result = replace(result, seconds={**result.seconds, "cost": result.seconds["cost"] + cost_seconds})
        if ctx.config.verify_trials and train:
            # An over-budget candidate is infeasible already and was not trained: it is not exported either.
            result = checked_in_runtime(ctx, result)
        if train:
            result = costed_in_loop(ctx, result)  # budgets then judge the measured or estimated figures
        violations = budget_violations(ctx.config.budgets, result.metrics)
        for name, violation in violations.items():
            trial.set_constraint(constraint_name(name), violation)
        feasible = all(v <= 0 for v in violations.values())
        if ctx.config.verify_trials:
            diverged = result.parity is not None and not result.parity.passed
            trial.set_constraint(PARITY_CONSTRAINT, 1.0 if diverged else 0.0)
            feasible = feasible and not diverged
        save_trial_weights(paths.trial_weights(trial.number), result)
        _record(trial, result, feasible)
        return objective_values(names, result.metrics)

    return objective


def trial_summary(result: CandidateResult, feasible: bool) -> str:
    """One line a person reads in optuna-dashboard: accuracy, device figures with provenance, every layer."""
    parts = [f"val {result.val.accuracy:.4f}", f"{result.stored_bytes / 1000:.1f} KB stored"]
    if result.device_cost is not None:
        cost = result.device_cost
        parts.append(f"{cost.latency_ms.value * 1000:.3g} us ({cost.latency_ms.label}) on {cost.device}")
        parts.append(f"RAM {cost.ram_bytes.value / 1000:.1f} KB")
    layers = [
        " ".join([name, *(text for technique in TECHNIQUES if (text := technique.describe(policy)))])
        for name, policy in result.candidate.policies
    ]
    return "; ".join([*parts, "infeasible" if not feasible else "feasible", ", ".join(layers)])


def _record(trial: optuna.Trial, result: CandidateResult, feasible: bool) -> None:
    # Few attributes, each one storage transaction: with SQLite every set_user_attr is a commit.
    trial.set_user_attr("summary", trial_summary(result, feasible))
    trial.set_user_attr("candidate", result.candidate.to_dict())
    trial.set_user_attr(METRICS_ATTR, trial_record(result, feasible).to_attr())


def trial_record(result: CandidateResult, feasible: bool) -> TrialRecord:
    """What a trial stores of its result (``nas.search.record``)."""
    cost, parity = result.device_cost, result.parity
    return TrialRecord(
        figures=result.metrics,
        feasible=feasible,
        finetuned=result.finetuned,
        seconds={k: round(v, 4) for k, v in result.seconds.items()},
        val_per_class=tuple(None if np.isnan(v) else round(v, 6) for v in result.val.per_class),
        layer_sizes={
            s.name: {
                "weights": s.weight_count,
                "weight_bytes": s.weight_bytes,
                "bias_bytes": s.bias_bytes,
                "qparam_bytes": s.qparam_bytes,
            }
            for s in result.layer_sizes
        },
        recovery=result.recovery,
        calibrated_accuracy=result.calibrated_accuracy,
        device=None if cost is None else cost.device,
        provenance={} if cost is None else cost.provenance(),
        latency_us={} if cost is None else {p.name: round(p.latency_ms.value * 1000, 4) for p in cost.layers},
        parity=None if parity is None else _parity_record(parity),
        infeasible_reason=None if parity is None or parity.passed else parity.reason,
        predicted={} if result.predicted_cost is None else result.predicted_cost.metrics(),
    )


def _parity_record(parity: Parity) -> ParityRecord:
    return ParityRecord(
        passed=parity.passed,
        agreement=parity.agreement,
        accuracy=parity.accuracy,
        jax_accuracy=parity.jax_accuracy,
        export_error=parity.export_error,
    )
