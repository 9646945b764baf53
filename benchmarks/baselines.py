"""Does the search beat what a user would do instead? The default problem (small CNN on digits, accuracy and
latency) searched for 100 trials on the host and on the STM32H7, beside its baselines and a HAWQ-style
allocation, all fine-tuned and costed the same way on the same device.

Baselines (``nas baselines``): fp32, uniform int8 post-training and quantization-aware, 50% magnitude pruning +
int8, and the family at half and quarter width trained from scratch (float and int8). HAWQ-style
(``nas/search/allocation.py``): per-knob sensitivity measured once, then a greedy allocation of bits and keep
ratios under each front point's latency (and the device's memory limits), fine-tuned like a trial.

The search is also run warm-started (``--warm-start``) with the same trial budget.
Hypervolumes are taken in one space per device: losses (1 - validation accuracy, latency) scaled over every
point of that device's comparison, with the reference point 10% beyond the worst. ``beats_all_baselines``: for
every baseline the device runs, the front has a point at no more cost that is at least as accurate (within
half a point: matched).

Usage: python benchmarks/baselines.py [--trials 100] [--devices host,stm32h7]
Writes results/benchmarks/baselines.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from nas.analysis.baselines_report import judge
from nas.analysis.compare import scaled_hypervolume, shared_scale
from nas.analysis.pareto import front_frame, trials_frame
from nas.config import SearchConfig
from nas.provenance import run_provenance
from nas.search.allocation import allocation_points
from nas.search.baselines import baseline_points
from nas.search.context import resolve_problem
from nas.search.study import run_search

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "baselines.json"


def losses(points: list[tuple[float, float]]) -> np.ndarray:
    """(validation accuracy, latency) pairs as losses (1 - accuracy, latency)."""
    return np.array([(1 - accuracy, latency) for accuracy, latency in points], float).reshape(-1, 2)


def device_run(device: str, trials: int, results: Path) -> dict[str, Any]:
    """One device: search, baselines, HAWQ-style points, hypervolumes and verdicts."""
    config = SearchConfig(device=device)
    summary = run_search(resolve_problem(config), name=f"baselines-{device}", trials=trials, results_dir=results)
    ctx = summary.context
    front = front_frame(trials_frame(summary.study), config.objectives)
    baselines = [point.to_dict() for point in baseline_points(ctx)]
    verdicts = [judge(front, point, config.objectives) for point in baselines]
    runnable = [verdict for verdict in verdicts if verdict.verdict != "not runnable"]
    budgets = [{**ctx.config.budgets, "latency_ms": float(v)} for v in front["latency_ms"]]
    hawq = allocation_points(ctx, budgets)
    search_points = list(zip(front["accuracy"], front["latency_ms"], strict=True))
    baseline_xy = [(p["metrics"]["val_accuracy"], p["metrics"]["latency_ms"]) for p in baselines if not p["unrunnable"]]
    hawq_xy = [(m["val_accuracy"], m["latency_ms"]) for _, candidate, m in hawq if m is not None]
    warm = run_search(
        resolve_problem(config), name=f"warm-{device}", trials=trials, results_dir=results, warm_start=True
    )
    warm_front = front_frame(trials_frame(warm.study), config.objectives)
    warm_points = list(zip(warm_front["accuracy"], warm_front["latency_ms"], strict=True))
    low, span = shared_scale(losses(search_points + baseline_xy + hawq_xy + warm_points))

    def volume(points: list[tuple[float, float]]) -> float:
        return round(scaled_hypervolume(losses(points), low, span), 4)

    return {
        "device": device,
        "trials": trials,
        "front": [
            {"trial": int(n), "val_accuracy": float(a), "latency_ms": float(lat)}
            for n, a, lat in zip(front["number"], front["accuracy"], front["latency_ms"], strict=True)
        ],
        "search_hypervolume": volume(search_points),
        "warm_start_search_hypervolume": volume(warm_points),
        "hawq_hypervolume": volume(hawq_xy) if hawq_xy else 0.0,
        "baselines_hypervolume": volume(baseline_xy) if baseline_xy else 0.0,
        "baseline_hypervolume": {
            p["name"]: volume([(p["metrics"]["val_accuracy"], p["metrics"]["latency_ms"])])
            for p in baselines
            if not p["unrunnable"]
        },
        "baselines": baselines,
        "verdicts": [vars(v) for v in verdicts],
        "hawq_points": [hawq_record(limits, candidate, metrics) for limits, candidate, metrics in hawq],
        "beats_all_baselines": all(v.verdict in ("beaten", "matched") for v in runnable),
    }


def hawq_record(limits: dict[str, float], candidate: Any, metrics: dict[str, Any] | None) -> dict[str, Any]:
    """One HAWQ-style allocation: its budget and, where the rule met it, what it reached."""
    if metrics is None or candidate is None:
        return {"budget": limits, "reached": False}
    return {
        "budget": limits,
        "reached": True,
        "val_accuracy": metrics["val_accuracy"],
        "latency_ms": metrics["latency_ms"],
        "candidate": candidate.to_dict(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--devices", default="host,stm32h7")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as scratch:
        runs = {d: device_run(d, args.trials, Path(scratch)) for d in args.devices.split(",")}
    result = {
        "devices": runs,
        "beats_all_baselines": all(run["beats_all_baselines"] for run in runs.values()),
        "search_hypervolume": {d: run["search_hypervolume"] for d, run in runs.items()},
        "hawq_hypervolume": {d: run["hawq_hypervolume"] for d, run in runs.items()},
        "warm_start_search_hypervolume": {d: run["warm_start_search_hypervolume"] for d, run in runs.items()},
        "method": (__doc__ or "").strip().split("\n\n")[0],
        "provenance": run_provenance(),
    }
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    for device, run in runs.items():
        print(
            f"{device}: search HV {run['search_hypervolume']} (warm-started {run['warm_start_search_hypervolume']}), "
            f"HAWQ-style HV {run['hawq_hypervolume']}, baselines HV "
            f"{run['baselines_hypervolume']}; beats all baselines: {run['beats_all_baselines']}"
        )
        for verdict in run["verdicts"]:
            print(f"  {verdict['baseline']:20s} {verdict['verdict']:12s} {verdict['detail']}")


if __name__ == "__main__":
    main()
