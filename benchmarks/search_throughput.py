"""Search throughput on the default problem, and the sampler comparison that picks the default sampler.

Part ``throughput``: a real 100-trial default search (small CNN, digits, default K) through ``run_search``
with SQLite storage; reports trials per minute, the wall time of the whole search, and

    overhead_ratio = mean trial wall time / (K x train-step time + validation eval time),

with the train-step and eval times measured in the same process before and after the search (the machine is
shared and noisy, so both sides of the ratio come from one run).

Part ``samplers``: TPE, NSGA-II, random and GP (when torch is installed) on the same problem, 100 trials x 3
seeds each, scored by the hypervolume of (validation error, stored size / uncompressed size) against the
reference point (1, 1). Each finished run is saved to a partial file, so an interrupted benchmark resumes.

Usage: python benchmarks/search_throughput.py [--part throughput|samplers|all] [--trials 100] [--seeds 3]
Writes results/benchmarks/search_throughput.json and search_throughput_samplers.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optuna

from latency_models.size import stored_bytes
from nas.compression import build_compression
from nas.config import SearchConfig
from nas.context import SearchContext, build_context, resolve_problem
from nas.evaluate import evaluate
from nas.objective import make_objective
from nas.pareto import hypervolume_2d
from nas.study import make_sampler, run_search
from search_spaces.space import Candidate

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "results" / "benchmarks"
OUT = OUT_DIR / "search_throughput.json"
PARTIAL = OUT_DIR / "search_throughput_samplers.partial.json"
SAMPLERS = ("tpe", "nsga2", "random", "gp")
NEEDS_TORCH = ("gp",)


def time_train_step(ctx: SearchContext, repeats: int = 60) -> float:
    """Seconds per compiled train step (warm), on a uniform int8 candidate."""
    candidate = Candidate.uniform(ctx.graph, weight_bits=8, activation_bits=8)
    compression = build_compression(ctx.graph, ctx.baseline.params, candidate)
    params = jax.tree_util.tree_map(jnp.array, ctx.baseline.params)
    opt_state = ctx.trainer.optimizer.init(params)
    rng = np.random.default_rng(0)
    batch = ctx.config.finetune.batch_size
    indices = [jnp.asarray(rng.choice(len(ctx.x_train), batch, replace=False)) for _ in range(repeats + 5)]
    for index in indices[:5]:
        params, opt_state, loss = ctx.trainer.train_step(
            params, opt_state, compression, ctx.x_train, ctx.y_train, index
        )
    loss.block_until_ready()
    start = time.perf_counter()
    for index in indices[5:]:
        params, opt_state, loss = ctx.trainer.train_step(
            params, opt_state, compression, ctx.x_train, ctx.y_train, index
        )
    loss.block_until_ready()
    return (time.perf_counter() - start) / repeats


def time_eval(ctx: SearchContext, repeats: int = 20) -> float:
    """Seconds per validation evaluation (warm)."""
    compression = build_compression(ctx.graph, ctx.baseline.params, Candidate.uncompressed(ctx.graph))
    data = ctx.problem.dataset
    evaluate(ctx.trainer, ctx.baseline.params, compression, data.x_val, data.y_val)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        evaluate(ctx.trainer, ctx.baseline.params, compression, data.x_val, data.y_val)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def throughput(trials: int) -> dict:
    """The 100-trial default search, timed end to end, and its overhead ratio."""
    config = SearchConfig()
    problem = resolve_problem(config)
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp)
        start = time.perf_counter()
        summary = run_search(problem, name="throughput", trials=trials, results_dir=results, show_progress=True)
        search_seconds = time.perf_counter() - start
        ctx = summary.context
        step_s = statistics.mean([time_train_step(ctx), time_train_step(ctx)])
        eval_s = time_eval(ctx)
        durations = [t.duration.total_seconds() for t in summary.study.trials if t.state.name == "COMPLETE"]
    ideal_s = config.finetune.steps * step_s + eval_s
    trial_s = statistics.mean(durations)
    return {
        "model": config.model,
        "dataset": config.dataset,
        "finetune_steps": config.finetune.steps,
        "trials": len(durations),
        "search_minutes": round(search_seconds / 60, 3),
        "search_minutes_includes": "baseline training (60 epochs), compilation, all trials, SQLite storage",
        "trials_per_minute": round(60 * len(durations) / search_seconds, 2),
        "mean_trial_seconds": round(trial_s, 4),
        "median_trial_seconds": round(statistics.median(durations), 4),
        "train_step_ms": round(1000 * step_s, 3),
        "eval_ms": round(1000 * eval_s, 3),
        "overhead_ratio": round(trial_s / ideal_s, 4),
        "overhead_ratio_target": 1.15,
        "within_10_minutes": search_seconds < 600,
    }


def sampler_run(ctx: SearchContext, sampler: str, seed: int, trials: int, baseline_bytes: int) -> dict:
    """One in-memory study with ``sampler``; returns its hypervolume and timing."""
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(sampler, seed))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        study.optimize(make_objective(ctx, Path(tmp)), n_trials=trials)
        seconds = time.perf_counter() - start
    points = np.array([[1 - t.values[0], t.values[1] / baseline_bytes] for t in study.best_trials])
    history = []
    for count in (25, 50, 75, trials):
        done = study.trials[:count]
        front_points = np.array([[1 - t.values[0], t.values[1] / baseline_bytes] for t in done])
        history.append(hypervolume_2d(front_points, (1.0, 1.0)))
    return {
        "sampler": sampler,
        "seed": seed,
        "hypervolume": hypervolume_2d(points, (1.0, 1.0)),
        "hypervolume_at_25_50_75_100": history,
        "front_size": len(points),
        "best_accuracy": max(t.values[0] for t in study.trials),
        "seconds": round(seconds, 1),
    }


def samplers(trials: int, seeds: int) -> dict:
    """All samplers x seeds, resuming from the partial file; returns the summary figures."""
    ctx = build_context(resolve_problem(SearchConfig()), results_dir=ROOT / "results")
    baseline_bytes = stored_bytes(ctx.graph, Candidate.uncompressed(ctx.graph))
    runs = json.loads(PARTIAL.read_text()) if PARTIAL.exists() else []
    available = [s for s in SAMPLERS if s != "gp" or _torch_available()]
    for sampler in available:
        for seed in range(seeds):
            if any(r["sampler"] == sampler and r["seed"] == seed and r["trials"] == trials for r in runs):
                continue
            print(f"sampler {sampler} seed {seed}", file=sys.stderr, flush=True)
            run = {**sampler_run(ctx, sampler, seed, trials, baseline_bytes), "trials": trials}
            runs.append(run)
            PARTIAL.write_text(json.dumps(runs, indent=1))
    summary = {}
    for sampler in available:
        values = [r["hypervolume"] for r in runs if r["sampler"] == sampler and r["trials"] == trials]
        summary[sampler] = {
            "hypervolume_mean": round(float(np.mean(values)), 5),
            "hypervolume_std": round(float(np.std(values)), 5),
            "hypervolume_per_seed": [round(v, 5) for v in values],
            "minutes_per_run": round(float(np.mean([r["seconds"] for r in runs if r["sampler"] == sampler])) / 60, 2),
        }
    best = max(summary, key=lambda s: summary[s]["hypervolume_mean"])
    core = [s for s in summary if s not in NEEDS_TORCH]
    default = max(core, key=lambda s: summary[s]["hypervolume_mean"])
    return {
        "sampler_trials": trials,
        "sampler_seeds": seeds,
        "hypervolume_reference": "validation error 1.0, stored size 1.0 x uncompressed",
        "samplers": summary,
        "gp_installed": _torch_available(),
        "best_sampler": best,
        "default_sampler": default,
        "default_rule": "best mean hypervolume among the samplers that run on the pinned core stack "
        "(gp needs PyTorch, several GB from PyPI, and is an opt-in: --sampler gp)",
        "runs": runs,
    }


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def plot_samplers(result: dict) -> None:
    """Hypervolume per sampler over the course of the search (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    trials = result["sampler_trials"]
    for sampler in result["samplers"]:
        curves = np.array(
            [
                r["hypervolume_at_25_50_75_100"]
                for r in result["runs"]
                if r["sampler"] == sampler and r["trials"] == trials
            ]
        )
        ax.errorbar([25, 50, 75, trials], curves.mean(0), yerr=curves.std(0), marker="o", capsize=3, label=sampler)
    ax.set_xlabel("trials")
    ax.set_ylabel("hypervolume (error x size ratio)")
    ax.set_title("samplers on cnn / digits (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT_DIR / "search_throughput_samplers.png", dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("throughput", "samplers", "all"), default="all")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    if args.part in ("throughput", "all"):
        result.update(throughput(args.trials))
        OUT.write_text(json.dumps(result, indent=1))
    if args.part in ("samplers", "all"):
        result.update(samplers(args.trials, args.seeds))
        plot_samplers(result)
        OUT.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
