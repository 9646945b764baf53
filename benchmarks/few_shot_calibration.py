"""Few-shot calibration: how many models measured on a device make a borrowed cost model trustworthy there.

This host stands in for a device nobody profiled. Its "prior" cost models are ones it did not measure for
itself: the analytic models of other devices (a Cortex-A76 phone core and a Raspberry Pi 4, both from their
specifications) and the host's own builtin-kernel table borrowed for XNNPACK. Each is calibrated
(``latency_models.calibration``: scale, plus a dispatch cost per op from 8 points on) with k of the 30
reference models timed whole on this host with XNNPACK, k in 2, 5, 10, 20 (20 random draws of the k each), and
scored on 70 held-out candidates of five families (those of ``cost_model_accuracy.py``), timed in the same run:
share within +-10% and Kendall's tau, mean over the draws. k = 0 is the uncalibrated prior.

Usage: python benchmarks/few_shot_calibration.py [--reuse]   (--reuse: rescore the committed measurements)
Writes results/benchmarks/few_shot_calibration.json and few_shot_calibration.png. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cost_model_accuracy import PROTOCOL, held_out
from result_file import write_result

from latency_models.calibration import CalibrationPoint, fit_calibration
from latency_models.layered import LayeredCostModel
from latency_models.registry import cost_model
from latency_models.runtimes.litert.timing import time_invokes
from nas.profiling.flash_fit import export_random
from nas.profiling.reference import reference_models
from nas.provenance import run_provenance
from search_spaces.graph import ModelGraph
from search_spaces.space import Candidate

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "results" / "benchmarks"
COUNTS = (2, 5, 10, 20)
DRAWS = 20
SEED = 7
PRIORS = {
    "analytic Cortex-A76 phone": ("android_a76", None),
    "analytic Raspberry Pi 4": ("rpi4", None),
    "host builtin table borrowed for XNNPACK": ("host", "builtin"),
}


def prior_model(device: str, kernels: str | None) -> LayeredCostModel:
    """A prior without its own calibration: the raw table or analytic model."""
    return cost_model(device, kernels, calibrated=False)


def points_of(
    model: LayeredCostModel, items: list[tuple[str, ModelGraph, Candidate]], measured: list[float]
) -> list[CalibrationPoint]:
    """Each model's uncalibrated prior beside its measurement."""
    return [
        model.calibration_point(name, model.raw_parts(graph, candidate), ms)
        for (name, graph, candidate), ms in zip(items, measured, strict=True)
    ]


def measure(items: list[tuple[str, ModelGraph, Candidate]]) -> list[float]:
    """Median latency (ms) of each model on this host, XNNPACK, 1 thread."""
    measured = []
    for index, (label, graph, candidate) in enumerate(items):
        content = export_random(graph, candidate)
        measured.append(time_invokes(content, delegate="xnnpack", protocol=PROTOCOL).median_ms)
        print(f"[{index + 1}/{len(items)}] {label}: {measured[-1] * 1000:.1f} us", file=sys.stderr, flush=True)
    return measured


def score(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """Share within +-10% and Kendall's tau."""
    error = np.abs(predicted - measured) / measured
    return {
        "within_10pct": float(np.mean(error <= 0.10)),
        "kendall_tau": float(stats.kendalltau(predicted, measured).statistic),
        "mape": float(np.mean(error)),
    }


def curve(
    references: list[CalibrationPoint], held: list[CalibrationPoint], rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Held-out scores after calibrating with k reference points, per k (mean and spread over draws)."""
    measured = np.array([p.measured_ms for p in held])
    rows = [{"points": 0, **score(np.array([p.raw_ms for p in held]), measured)}]
    for count in COUNTS:
        draws = []
        for _ in range(DRAWS):
            chosen = [references[i] for i in rng.choice(len(references), size=count, replace=False)]
            calibration = fit_calibration(chosen, basis="benchmark")
            draws.append(score(np.array([calibration.corrected(p.groups, p.ops) for p in held]), measured))
        row: dict[str, Any] = {"points": count}
        for key in ("within_10pct", "kendall_tau", "mape"):
            values = [d[key] for d in draws]
            row[key] = float(np.mean(values))
            row[f"{key}_std"] = float(np.std(values))
        rows.append(row)
    return rows


def run(reuse: dict[str, Any] | None) -> dict[str, Any]:
    """Measures the reference and held-out models once (or reuses a previous run's measurements), then scores
    every prior at every k."""
    references = [(r.name, r.graph, r.candidate) for r in reference_models()]
    targets = held_out(7)
    if reuse is None:
        start = time.perf_counter()
        measurements = {"references": measure(references), "held_out": measure(targets)}
        seconds, source = round(time.perf_counter() - start, 1), "measured in this run"
    else:
        measurements, seconds = reuse["measurements"], reuse["measure_seconds"]
        source = reuse["measurements_source"]
        if not source.startswith("reused"):
            source = f"reused from the run of {reuse['provenance']['date_utc']}"
    result: dict[str, Any] = {"reference_models": len(references), "held_out": len(targets), "draws": DRAWS}
    result.update(measure_seconds=seconds, measurements_source=source, measurements=measurements, curves={})
    for label, (device, kernels) in PRIORS.items():
        model = prior_model(device, kernels)
        refs = points_of(model, references, measurements["references"])
        held = points_of(model, targets, measurements["held_out"])
        result["curves"][label] = curve(refs, held, np.random.default_rng(SEED))
    headline = result["curves"]["analytic Cortex-A76 phone"]
    at_10 = next(row for row in headline if row["points"] == 10)
    result["within_10pct_at_10"] = round(at_10["within_10pct"], 4)
    result["kendall_tau_at_10"] = round(at_10["kendall_tau"], 4)
    result["headline_prior"] = "analytic Cortex-A76 phone"
    return result


def plot(result: dict[str, Any]) -> None:
    """Within +-10% and Kendall's tau against the number of calibration points, per prior."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for label, rows in result["curves"].items():
        points = [row["points"] for row in rows]
        for ax, key in zip(axes, ("within_10pct", "kendall_tau"), strict=True):
            ax.errorbar(
                points,
                [r[key] for r in rows],
                yerr=[r.get(f"{key}_std", 0) for r in rows],
                marker="o",
                capsize=3,
                label=label,
            )
    axes[0].axhline(0.8, color="0.5", ls="--", lw=0.8, label="target at 10 points")
    axes[1].axhline(0.9, color="0.5", ls="--", lw=0.8)
    axes[0].set_ylabel("held-out share within ±10% (host, XNNPACK)")
    axes[1].set_ylabel("held-out Kendall tau")
    for ax in axes:
        ax.set_xlabel("reference models measured on the device")
        ax.set_xticks([0, *COUNTS])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT_DIR / "few_shot_calibration.png", dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--reuse", action="store_true", help="score again on the measurements of the committed result (no timing)"
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    previous = OUT_DIR / "few_shot_calibration.json"
    result = run(json.loads(previous.read_text()) if args.reuse else None)
    result["provenance"] = run_provenance()
    write_result((OUT_DIR / "few_shot_calibration.json"), result)
    plot(result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("provenance", "measurements")}, indent=1))


if __name__ == "__main__":
    main()
