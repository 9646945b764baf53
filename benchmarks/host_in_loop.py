"""The host measured in the loop (``--host-latency measured``, the default for a host study): how close a trial's
figure comes to a quiet re-measurement minutes later, what timing costs the search, and what the predictor
learns from the measured trials. Three parts (``--part``), each rewriting only its own keys of the JSON:

``digits``: the digits default (small CNN, accuracy against host latency, the study's kernel set), after a
warm-up run that trains and caches the baseline and its fine-tuning rate:

1. The same search twice, ``predicted`` then ``measured``, each from an empty study: ``overhead_ratio`` is the
   measured search's wall time over the predicted one's; ``timing_share_of_trial_time`` the median share of a
   trial's time spent timing.
2. Every measured trial's file exported again (the same file) and re-timed after the search, against the same
   reference model and its figure at the search's start (``host_timing`` on the study), twice back to back.
   ``within_10pct`` and ``kendall_tau`` compare the in-loop figures with the first re-measurement; the same
   figures between the two re-measurements (``back_to_back_within_10pct``, ``back_to_back_kendall_tau``) are
   the ceiling this machine's repeatability sets; ``predicted_within_10pct`` and ``predicted_kendall_tau`` the
   same for the host tables' prediction of each trial (kept on its record). Digits models take 1-100 us.

``families``: larger models, in-loop as above: short searches of several families at input sizes 16 and 24
(the digits images scaled up: real data, larger models), each with one kernel set, both kernel sets covered,
then the same re-measurement. ``families.within_10pct_over_50us`` and ``families.kendall_tau_over_50us`` on
the trials of at least 50 us (per kernel set and pooled); then one of the searches again with two workers
(``--workers 2``: the other worker trains while one times) and the same figures for it beside the one-worker
run's (``two_workers``).

``correction``: the learned whole-model correction (``latency_models.correction``). A pool of random candidates
of every family at input sizes 16, 24 and 28 (random weights), each exported and timed as a trial's file is
(against a reference timed before and after it), per kernel set; then every one re-timed once more after the
whole pool (the ceiling). Each model's correction is fitted without it (5 folds; and a stricter split holding
out a whole family at a time): ``within_10pct_over_01ms`` is the corrected prediction's share within +-10% on
the models above 0.1 ms, beside the calibrated tables' own (``predicted_within_10pct_over_01ms``), the tables
times one fresh scale fitted on the other folds (``rescaled_within_10pct_over_01ms``: the machine's speed
today, all a scale can correct) and the re-timing's (``retimed_within_10pct_over_01ms``).

Nothing else heavy may run meanwhile.

Usage: python benchmarks/host_in_loop.py [--part digits|families|correction|all] [--trials 30]
Writes results/benchmarks/host_in_loop.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
from scipy.ndimage import zoom
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from result_file import write_result  # noqa: E402

from latency_models.correction import MEASURED_VARIABLE, MeasuredModel, held_out_predictions  # noqa: E402
from latency_models.layered import whole_model  # noqa: E402
from latency_models.registry import cost_model  # noqa: E402
from latency_models.runtimes import runtime_named  # noqa: E402
from nas.config import FinetuneConfig, SearchConfig, TrainConfig  # noqa: E402
from nas.profiling.flash_fit import export_random  # noqa: E402
from nas.provenance import run_provenance  # noqa: E402
from nas.runtime.export import CALIBRATION_EXAMPLES, export_candidate  # noqa: E402
from nas.runtime.host_timing import HostTiming  # noqa: E402
from nas.search.context import build_context, resolve_problem, timing_reference  # noqa: E402
from nas.search.record import TrialRecord  # noqa: E402
from nas.search.saved import SavedStudy  # noqa: E402
from nas.search.study import HOST_TIMING_ATTR, run_search  # noqa: E402
from search_spaces.graph import ModelGraph, analyze  # noqa: E402
from search_spaces.space import Candidate, SearchSpace, suggest_candidate  # noqa: E402
from search_spaces.spec import load_model_spec  # noqa: E402

OUT = ROOT / "results" / "benchmarks" / "host_in_loop.json"
PARTS = ("digits", "families", "correction")
# (family, input side, kernel set): both kernel sets, four families, two input sizes.
FAMILY_RUNS = (
    ("resnet8", 16, "xnnpack"),
    ("dscnn", 24, "builtin"),
    ("mobilenet_v1", 16, "builtin"),
    ("cnn", 24, "xnnpack"),
)
FAMILY_TRAIN = TrainConfig(epochs=8)
FAMILY_FINETUNE = FinetuneConfig(steps=60, learning_rate=1e-3)  # a fixed rate: no sweep, these runs time trials
OVER_50US_MS = 0.05
POOL_FAMILIES = ("cnn", "mlp", "dscnn", "mobilenet_v1", "resnet8")
POOL_SIDES = (16, 24, 28)
POOL_SEED = 777  # apart from the reference models' (4242) and the cost-model benchmark's (12345)
OVER_01MS = 0.1


def search_seconds(config: SearchConfig, name: str, trials: int, results: Path, workers: int = 1) -> float:
    """Wall seconds of one search."""
    problem = resolve_problem(config)
    start = time.perf_counter()
    run_search(problem, name=name, trials=trials, results_dir=results, show_progress=False, workers=workers)
    return time.perf_counter() - start


def within(a: np.ndarray, b: np.ndarray, tolerance: float = 0.10) -> float:
    """Share of pairs whose first figure lies within ``tolerance`` of the second."""
    return float(np.mean(np.abs(a - b) <= tolerance * b))


def tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau of two sets of figures."""
    return float(kendalltau(a, b).statistic)


def remeasured(saved: SavedStudy, results: Path) -> dict[str, list[float]]:
    """Each complete trial's in-loop figure, and its file re-timed twice back to back against the reference."""
    problem = saved.problem()
    recorded = saved.study.user_attrs[HOST_TIMING_ATTR]
    context = build_context(problem, results_dir=results)
    runtime = runtime_named("litert")
    fresh = {
        "runtime": runtime,
        "kernel_set": recorded["kernel_set"],
        "protocol": runtime.timing_protocol(1),
        "reference": timing_reference(context),
        "reference_ms": recorded["reference_ms"],  # the figures are all at the search's starting speed
    }
    figures: dict[str, list[float]] = {
        "in_loop": [],
        "predicted": [],
        "again": [],
        "back_to_back": [],
        "timing_share": [],
    }
    calibration = problem.dataset.x_train[:CALIBRATION_EXAMPLES]
    for trial in saved.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        record = TrialRecord.of(trial)
        if record is None or "timing" not in record.seconds:
            continue
        params, compression = saved.trial_weights(trial.number)
        candidate = Candidate.from_dict(trial.user_attrs["candidate"])
        content = export_candidate(problem.graph, params, compression, candidate, calibration).content
        figures["in_loop"].append(record.figures["latency_ms"])
        figures["predicted"].append(record.predicted["latency_ms"])  # the host tables' figure for the same trial
        figures["again"].append(HostTiming(**fresh).latency(content).value)
        figures["back_to_back"].append(HostTiming(**fresh).latency(content).value)
        figures["timing_share"].append(record.seconds["timing"] / sum(record.seconds.values()))
    return figures


def digits_part(trials: int, results: Path) -> dict[str, Any]:
    """The digits default: overhead, and in-loop figures against re-measurements (see the module docstring)."""
    search_seconds(SearchConfig(host_latency="predicted"), "warmup", 1, results)  # the baseline, cached for both
    predicted = search_seconds(SearchConfig(host_latency="predicted"), "predicted", trials, results)
    measured = search_seconds(SearchConfig(host_latency="measured"), "measured", trials, results)
    figures = remeasured(SavedStudy.open("measured", results), results)
    in_loop, again, repeat = (np.array(figures[key]) for key in ("in_loop", "again", "back_to_back"))
    predicted_ms = np.array(figures["predicted"])
    return {
        "trials": trials,
        "trials_timed": len(in_loop),
        "latency_us_range": [round(float(again.min()) * 1000, 2), round(float(again.max()) * 1000, 2)],
        "within_10pct": round(within(in_loop, again), 3),
        "kendall_tau": round(tau(in_loop, again), 3),
        "predicted_within_10pct": round(within(predicted_ms, again), 3),
        "predicted_kendall_tau": round(tau(predicted_ms, again), 3),
        "back_to_back_within_10pct": round(within(repeat, again), 3),
        "back_to_back_kendall_tau": round(tau(repeat, again), 3),
        "overhead_ratio": round(measured / predicted, 3),
        "predicted_search_seconds": round(predicted, 1),
        "measured_search_seconds": round(measured, 1),
        "timing_share_of_trial_time": round(float(np.median(figures["timing_share"])), 3),
        "provenance": run_provenance(),
    }


def upscaled_digits(side: int, folder: Path) -> Path:
    """The digits images scaled up to ``side`` x ``side`` (linear interpolation) as a dataset ``.npz``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = zoom(digits.images / 16.0, (1, side / 8, side / 8), order=1).astype(np.float32)[..., None]
    order = np.random.default_rng(0).permutation(len(images))
    test, train = order[: len(order) // 5], order[len(order) // 5 :]
    path = folder / f"digits{side}.npz"
    np.savez(path, x_train=images[train], y_train=digits.target[train], x_test=images[test], y_test=digits.target[test])
    return path


def family_config(family: str, side: int, kernels: str, folder: Path) -> SearchConfig:
    """A host search of ``family`` on digits scaled to ``side``, timed in the loop with ``kernels``."""
    return SearchConfig(
        model=family,
        dataset=str(upscaled_digits(side, folder)),
        kernel_set=kernels,
        host_latency="measured",
        train=FAMILY_TRAIN,
        finetune=FAMILY_FINETUNE,
    )


def agreement(figures: dict[str, list[float]], floor_ms: float) -> dict[str, Any]:
    """In-loop figures against the re-measurement, on the trials whose re-measurement is at least ``floor_ms``."""
    in_loop, again, repeat = (np.array(figures[key]) for key in ("in_loop", "again", "back_to_back"))
    kept = again >= floor_ms
    return {
        "trials_timed": len(again),
        "trials_over_floor": int(kept.sum()),
        "within_10pct": round(within(in_loop[kept], again[kept]), 3),
        "kendall_tau": round(tau(in_loop[kept], again[kept]), 3) if kept.sum() > 1 else None,
        "back_to_back_within_10pct": round(within(repeat[kept], again[kept]), 3),
        "latency_us_range": [round(float(again.min()) * 1000, 1), round(float(again.max()) * 1000, 1)],
    }


def families_part(trials: int, results: Path) -> dict[str, Any]:
    """Larger models in the loop, both kernel sets; then the first run again with two workers."""
    runs: dict[str, Any] = {}
    pooled: dict[str, dict[str, list[float]]] = {
        kernels: {"in_loop": [], "again": [], "back_to_back": []} for kernels in ("xnnpack", "builtin")
    }
    for family, side, kernels in FAMILY_RUNS:
        name = f"{family}{side}-{kernels}"
        config = family_config(family, side, kernels, results)
        seconds = search_seconds(config, name, trials, results)
        figures = remeasured(SavedStudy.open(name, results), results)
        runs[name] = {**agreement(figures, OVER_50US_MS), "search_seconds": round(seconds, 1)}
        for key in pooled[kernels]:
            pooled[kernels][key] += figures[key]
        print(f"{name}: {runs[name]}", file=sys.stderr, flush=True)
    family, side, kernels = FAMILY_RUNS[0]
    two = f"{family}{side}-{kernels}-two-workers"
    search_seconds(family_config(family, side, kernels, results), two, trials, results, workers=2)
    two_workers = agreement(remeasured(SavedStudy.open(two, results), results), OVER_50US_MS)
    every = {key: [v for k in pooled for v in pooled[k][key]] for key in ("in_loop", "again", "back_to_back")}
    overall = agreement(every, OVER_50US_MS)
    return {
        "runs": runs,
        "trials_per_run": trials,
        "per_kernel_set": {kernels: agreement(figures, OVER_50US_MS) for kernels, figures in pooled.items()},
        "within_10pct_over_50us": overall["within_10pct"],
        "kendall_tau_over_50us": overall["kendall_tau"],
        "back_to_back_within_10pct_over_50us": overall["back_to_back_within_10pct"],
        "trials_over_50us": overall["trials_over_floor"],
        "two_workers": {"run": two, **two_workers},
        "one_worker": {"run": f"{family}{side}-{kernels}", **runs[f"{family}{side}-{kernels}"]},
        "provenance": run_provenance(),
    }


def pool(per_shape: int) -> list[tuple[str, ModelGraph, Candidate]]:
    """Random candidates and the uniform int8 model of every family at every pool input size."""
    items: list[tuple[str, ModelGraph, Candidate]] = []
    for family in POOL_FAMILIES:
        spec = load_model_spec(family)
        space = SearchSpace().with_model_rules(spec.rules).without_sparsity()
        for side in POOL_SIDES:
            graph = analyze(spec, (side, side, 1), 10)
            items.append((family, graph, Candidate.uniform(graph, weight_bits=8, activation_bits=8)))
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=POOL_SEED + len(items)))
            items += [(family, graph, suggest_candidate(study.ask(), graph, space)) for _ in range(per_shape)]
    return items


def pool_reference() -> bytes:
    """The pool's reference model: the small CNN's uniform int8 model at 16 x 16."""
    graph = analyze(load_model_spec("cnn"), (16, 16, 1), 10)
    return export_random(graph, Candidate.uniform(graph, weight_bits=8, activation_bits=8))


def correction_part(per_shape: int) -> dict[str, Any]:
    """The learned correction on held-out models of the pool (see the module docstring)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    items = pool(per_shape)
    contents = [export_random(graph, candidate) for _, graph, candidate in items]
    runtime, reference = runtime_named("litert"), pool_reference()
    timers = {kernels: HostTiming.start(runtime, kernels, 1, reference) for kernels in ("xnnpack", "builtin")}
    measured = {kernels: [timer.latency(c).value for c in contents] for kernels, timer in timers.items()}
    retimed = {}
    for kernels, timer in timers.items():  # minutes later, at the same reference speed
        again = HostTiming(
            runtime=runtime,
            kernel_set=kernels,
            protocol=timer.protocol,
            reference=reference,
            reference_ms=timer.reference_ms,
        )
        retimed[kernels] = [again.latency(c).value for c in contents]
    result: dict[str, Any] = {"models": len(items), "families": list(POOL_FAMILIES), "input_sides": list(POOL_SIDES)}
    for kernels in timers:
        result[kernels] = correction_scores(items, measured[kernels], retimed[kernels], kernels)
    over = [result[k]["models_over_01ms"] for k in timers]
    result["within_10pct_over_01ms"] = round(
        sum(result[k]["within_10pct_over_01ms"] * n for k, n in zip(timers, over, strict=True)) / sum(over), 3
    )
    result["provenance"] = run_provenance()
    return result


def correction_scores(
    items: list[tuple[str, ModelGraph, Candidate]], measured: list[float], retimed: list[float], kernels: str
) -> dict[str, Any]:
    """Held-out corrected predictions against the measurements, on the models above 0.1 ms."""
    model = cost_model("host", kernels)  # the shipped tables and calibration (no correction: an empty store)
    assert model.correction is None
    points: list[MeasuredModel] = []
    for (_, graph, candidate), ms in zip(items, measured, strict=True):
        cost = model.cost(graph, candidate)
        whole = whole_model(model.raw_parts(graph, candidate), flash=cost.flash_bytes, ram=cost.ram_bytes)
        points.append(MeasuredModel(name=str(len(points)), model=whole, measured_ms=ms))
    families = [family for family, _, _ in items]
    predicted, corrected = held_out_predictions(points, model.calibrated_ms)
    _, family_out = held_out_predictions(points, model.calibrated_ms, groups=families)
    truth, again = np.array(measured), np.array(retimed)
    rescaled = rescaled_held_out(predicted, truth)
    over = truth > OVER_01MS
    return {
        "models_over_01ms": int(over.sum()),
        "latency_us_range": [round(float(truth.min()) * 1000, 1), round(float(truth.max()) * 1000, 1)],
        "within_10pct_over_01ms": round(within(corrected[over], truth[over]), 3),
        "family_held_out_within_10pct_over_01ms": round(within(family_out[over], truth[over]), 3),
        "predicted_within_10pct_over_01ms": round(within(predicted[over], truth[over]), 3),
        "rescaled_within_10pct_over_01ms": round(within(rescaled[over], truth[over]), 3),
        "retimed_within_10pct_over_01ms": round(within(again[over], truth[over]), 3),
        "kendall_tau_over_01ms": round(tau(corrected[over], truth[over]), 3),
        "predicted_kendall_tau_over_01ms": round(tau(predicted[over], truth[over]), 3),
        "within_10pct": round(within(corrected, truth), 3),
        "predicted_within_10pct": round(within(predicted, truth), 3),
        "retimed_within_10pct": round(within(again, truth), 3),
    }


def rescaled_held_out(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The prediction times one scale, the median measured / predicted of the other folds' models: what a
    fresh whole-model scale alone gives (the machine's speed today), beside the learned correction."""
    order = np.random.default_rng(0).permutation(len(truth))
    rescaled = np.empty(len(truth))
    for fold in range(5):
        held = order[fold::5]
        kept = np.setdiff1d(order, held)
        rescaled[held] = predicted[held] * np.median(truth[kept] / predicted[kept])
    return rescaled


def main() -> None:
    """Runs the chosen parts and merges their keys into the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=(*PARTS, "all"), default="all")
    parser.add_argument("--trials", type=int, default=30, help="trials of the digits searches")
    parser.add_argument("--family-trials", type=int, default=10, help="trials of each larger-model search")
    parser.add_argument("--per-shape", type=int, default=20, help="random pool candidates per family and size")
    args = parser.parse_args()
    parts = PARTS if args.part == "all" else (args.part,)
    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    with tempfile.TemporaryDirectory(prefix="host-in-loop-") as folder:
        results = Path(folder)
        os.environ[MEASURED_VARIABLE] = str(results / "measured")  # the user's learned models stay out of it
        if "digits" in parts:
            result.update(digits_part(args.trials, results))
            write_result(OUT, result)  # after each part: a later failure keeps these figures
        if "families" in parts:
            result["families"] = families_part(args.family_trials, results)
            write_result(OUT, result)  # after each part: a later failure keeps these figures
        if "correction" in parts:
            # The searches above taught the host a correction: the pool is predicted by the tables alone.
            os.environ[MEASURED_VARIABLE] = str(results / "none measured")
            result["correction"] = correction_part(args.per_shape)
            write_result(OUT, result)  # after each part: a later failure keeps these figures
    print(json.dumps({k: v for k, v in result.items() if k != "provenance"}, indent=1))


if __name__ == "__main__":
    main()
