"""How well the host cost model predicts whole exported models it never saw.

Held-out set: random candidates (seeded random sampling of each family's search space) of five model families
at two input sizes (8x8x1 as digits, 28x28x1 as MNIST; random weights: latency does not depend on values),
exported through the project's exporter and timed whole on this host, with the same timing protocol as the
profile, for each kernel set (XNNPACK and builtin, 1 thread). Each model is timed twice back to back (the median
relative difference of the two is the noise floor), and once more after every other candidate was measured:
how often that late measurement falls within +-10% of the first is the ceiling any predictor can reach on this
machine (its drift over minutes is larger than the back-to-back noise).

Predictions come from the committed host tables and their whole-model calibration (``nas profile --device host``;
the calibration's reference models are other random candidates, seeded apart from these), and are reported
uncalibrated too (the table's sum with its whole-model terms), and calibrated afresh at the start of this run
(the reference models timed again first, as `nas profile --device host --calibrate` does before a search). Two
baselines run on the same
candidates: a MACs-only linear fit (latency = a + b x MACs, fitted on these very candidates by least squares:
the most favourable case for it), and the plain sum of the per-layer table figures without the whole-model
terms (invoke overhead, QUANTIZE / DEQUANTIZE / requantize at precision boundaries).

Also checked on every candidate: predicted RAM against the runtime's tensor memory (builtin kernels), and
predicted flash against the file size.

Usage: python benchmarks/cost_model_accuracy.py [--per-shape 7]
Writes results/benchmarks/cost_model_accuracy.json and cost_model_accuracy.png. Run it on a quiet machine.
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
from result_file import write_result
from scipy import stats

from latency_models.keys import layer_keys
from latency_models.kinds.measured.model import MeasuredCostModel
from latency_models.predictor import macs
from latency_models.registry import cost_model
from latency_models.runtimes.litert.interpreter import delegate_partitions
from latency_models.runtimes.litert.memory_plan import tensor_memory
from latency_models.runtimes.litert.timing import TimingProtocol, relative_difference, time_invokes
from latency_models.table import Measurement
from nas.profiling.flash_fit import export_random
from nas.profiling.run import measure_calibrations
from nas.provenance import run_provenance
from search_spaces.graph import ModelGraph, analyze
from search_spaces.space import Candidate, SearchSpace, suggest_candidate
from search_spaces.spec import load_model_spec

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "results" / "benchmarks"
FAMILIES = ("cnn", "mlp", "dscnn", "mobilenet_v1", "resnet8")
SHAPES = ((8, 8, 1), (28, 28, 1))
KERNEL_SETS = ("xnnpack", "builtin")
PROTOCOL = TimingProtocol(warmup=20, rounds=40, invokes_per_round=10, threads=1)
SEED = 12345  # distinct from the profile's grid seed


def held_out(per_shape: int) -> list[tuple[str, ModelGraph, Candidate]]:
    """Seeded random candidates of every family at every input size."""
    items: list[tuple[str, ModelGraph, Candidate]] = []
    for family in FAMILIES:
        spec = load_model_spec(family)
        space = SearchSpace().with_model_rules(spec.rules).without_sparsity()
        for shape in SHAPES:
            graph = analyze(spec, shape, 10)
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=SEED + len(items)))
            items += [
                (f"{family}@{shape[0]}", graph, suggest_candidate(study.ask(), graph, space)) for _ in range(per_shape)
            ]
    return items


def model_macs(graph: ModelGraph, candidate: Candidate) -> float:
    """Total multiply-accumulates of the candidate's ops."""
    return float(sum(macs(key) for _, key in layer_keys(graph, candidate)))


def layer_sum(model: MeasuredCostModel, graph: ModelGraph, candidate: Candidate) -> float:
    """The plain per-layer sum: the layers' table figures, no whole-model terms."""
    cost = model.cost(graph, candidate)
    layers = {layer.name for layer in graph.layers}
    return sum(part.latency_ms.value for part in cost.layers if part.name in layers)


def scores(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """Share within +-10%, MAPE and Kendall's tau of predictions against measurements."""
    error = np.abs(predicted - measured) / measured
    return {
        "within_10pct": round(float(np.mean(error <= 0.10)), 4),
        "mape": round(float(np.mean(error)), 4),
        "kendall_tau": round(float(stats.kendalltau(predicted, measured).statistic), 4),
    }


def run(per_shape: int) -> dict[str, Any]:
    """Exports, measures and predicts every held-out candidate with every kernel set."""
    items = held_out(per_shape)
    models = host_models()
    fresh = fresh_calibrations(models)
    rows = []
    start = time.perf_counter()
    for index, (label, graph, candidate) in enumerate(items):
        content = export_random(graph, candidate)
        row: dict[str, Any] = {"model": label, "candidate": candidate.to_dict()}
        for kernels, model in models.items():
            first = time_invokes(content, delegate=kernels, protocol=PROTOCOL)
            second = time_invokes(content, delegate=kernels, protocol=PROTOCOL)
            cost = model.cost(graph, candidate)
            row[kernels] = {
                "measured_ms": first.median_ms,
                "repeat_ms": second.median_ms,
                "predicted_ms": cost.latency_ms.value,
                "fresh_calibration_ms": fresh[kernels].cost(graph, candidate).latency_ms.value,
                "uncalibrated_ms": sum(part.latency_ms.value for part in model.raw_parts(graph, candidate)),
                "provenance": cost.latency_ms.label,
                "layer_sum_ms": layer_sum(model, graph, candidate),
            }
        cost = models["builtin"].cost(graph, candidate)
        row["macs"] = model_macs(graph, candidate)
        row["partitions"] = delegate_partitions(content)
        row["ram"] = {"predicted": int(cost.ram_bytes.value), "measured": tensor_memory(content).runtime_bytes}
        row["flash"] = {"predicted": round(cost.flash_bytes.value), "measured": len(content)}
        rows.append(row)
        print(
            f"[{index + 1}/{len(items)}] {label}: "
            + ", ".join(
                f"{k} {row[k]['measured_ms'] * 1000:.1f} us measured / {row[k]['predicted_ms'] * 1000:.1f} predicted"
                for k in KERNEL_SETS
            ),
            file=sys.stderr,
            flush=True,
        )
    for (_, graph, candidate), row in zip(items, rows, strict=True):  # the late repeat: minutes later
        content = export_random(graph, candidate)
        for kernels in KERNEL_SETS:
            row[kernels]["late_ms"] = time_invokes(content, delegate=kernels, protocol=PROTOCOL).median_ms
    return summarize(rows, time.perf_counter() - start, models)


def fresh_calibrations(models: dict[str, MeasuredCostModel]) -> dict[str, MeasuredCostModel]:
    """The host tables calibrated now, at the start of this run (as `nas profile --device host --calibrate`
    does before a search; the committed calibration files are left alone)."""
    device = next(iter(models.values())).device
    calibrations = measure_calibrations(device, {k: m.table for k, m in models.items()}, show_progress=False)
    return {k: MeasuredCostModel(device, m.table, calibrations[k]) for k, m in models.items()}


def host_models() -> dict[str, MeasuredCostModel]:
    """The committed host cost model of every kernel set."""
    models = {}
    for kernels in KERNEL_SETS:
        model = cost_model("host", kernels)
        assert isinstance(model, MeasuredCostModel), "the host is costed from measured tables"
        models[kernels] = model
    return models


def summarize(rows: list[dict[str, Any]], seconds: float, models: dict[str, MeasuredCostModel]) -> dict[str, Any]:
    """The figures per kernel set, the baselines, RAM and flash."""
    result: dict[str, Any] = {
        "candidates": len(rows),
        "families": list(FAMILIES),
        "input_shapes": [list(s) for s in SHAPES],
        "protocol": PROTOCOL.describe(),
        "seconds": round(seconds, 1),
    }
    x_macs = np.array([r["macs"] for r in rows])
    for kernels in KERNEL_SETS:
        measured = np.array([r[kernels]["measured_ms"] for r in rows])
        repeat = np.array([r[kernels]["repeat_ms"] for r in rows])
        predicted = np.array([r[kernels]["predicted_ms"] for r in rows])
        plain = np.array([r[kernels]["layer_sum_ms"] for r in rows])
        uncalibrated = np.array([r[kernels]["uncalibrated_ms"] for r in rows])
        fresh = np.array([r[kernels]["fresh_calibration_ms"] for r in rows])
        late = np.array([r[kernels]["late_ms"] for r in rows])
        design = np.column_stack([np.ones_like(x_macs), x_macs])
        macs_fit = design @ np.linalg.lstsq(design, measured, rcond=None)[0]
        noise = [relative_difference_ms(a, b) for a, b in zip(measured, repeat, strict=True)]
        result[kernels] = {
            **scores(predicted, measured),
            "noise_floor_pct": round(100 * float(np.median(noise)), 3),
            "uncalibrated": scores(uncalibrated, measured),
            "calibrated_at_start": scores(fresh, measured),
            "late_repeat": scores(late, measured),
            "late_repeat_note": "the same models timed again minutes later, scored as a prediction: the ceiling",
            "measured_ms_range": [round(float(measured.min()), 5), round(float(measured.max()), 5)],
            "extrapolated_share": round(float(np.mean(["extrapolated" in r[kernels]["provenance"] for r in rows])), 4),
            "baseline_macs_linear": scores(np.maximum(macs_fit, 1e-9), measured),
            "baseline_layer_sum": scores(plain, measured),
            "table_provenance": {
                k: models[kernels].table.provenance.get(k) for k in ("date_utc", "cpu", "noise_floor_pct")
            },
            "calibration": calibration_summary(models[kernels]),
        }
    result["xnnpack"]["error_by_partitions"] = error_by_partitions(rows)
    ram = [(r["ram"]["predicted"], r["ram"]["measured"]) for r in rows]
    flash = np.array([(r["flash"]["predicted"], r["flash"]["measured"]) for r in rows], float)
    result["ram_exact_share"] = round(float(np.mean([p == m for p, m in ram])), 4)
    result["ram_max_abs_error_bytes"] = int(max(abs(p - m) for p, m in ram))
    result["flash_mape"] = round(float(np.mean(np.abs(flash[:, 0] - flash[:, 1]) / flash[:, 1])), 5)
    result["flash_max_abs_error_bytes"] = int(np.max(np.abs(flash[:, 0] - flash[:, 1])))
    result["rows"] = rows
    return result


def error_by_partitions(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median signed error of the XNNPACK prediction by the number of delegate partitions of the model, and the
    rank correlation of the two: whether a partition term is missing from the model."""
    partitions = np.array([r["partitions"] for r in rows])
    errors = np.array([r["xnnpack"]["predicted_ms"] / r["xnnpack"]["measured_ms"] - 1 for r in rows])
    groups = {"1": partitions == 1, "2-4": (partitions >= 2) & (partitions <= 4), "5+": partitions >= 5}
    correlation = stats.spearmanr(partitions, errors)
    return {
        "median_signed_error": {k: round(float(np.median(errors[m])), 4) for k, m in groups.items() if m.any()},
        "models": {k: int(m.sum()) for k, m in groups.items()},
        "spearman": round(float(correlation.statistic), 4),
        "p_value": round(float(correlation.pvalue), 4),
    }


def calibration_summary(model: MeasuredCostModel) -> dict[str, Any] | None:
    """The calibration the predictions used: its coefficients, size and in-sample error."""
    calibration = model.calibration
    if calibration is None:
        return None
    return {
        "scale": round(calibration.scale, 4),
        "group_scales": {g: round(v, 4) for g, v in calibration.group_scales.items()},
        "per_op_us": round(calibration.per_op_ms * 1000, 4),
        "points": len(calibration.points),
        "fit_error": calibration.fit_error(),
        "source": calibration.provenance.get("source"),
        "fitted_utc": calibration.provenance.get("date_utc"),
    }


def relative_difference_ms(a: float, b: float) -> float:
    """|a - b| / mean(a, b)."""
    return relative_difference(
        Measurement(median_ms=a, p25_ms=a, p75_ms=a, runs=1), Measurement(median_ms=b, p25_ms=b, p75_ms=b, runs=1)
    )


def plot(result: dict[str, Any]) -> None:
    """Predicted against measured latency, per kernel set, log-log, with the +-10% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, kernels in zip(axes, KERNEL_SETS, strict=True):
        measured = np.array([r[kernels]["measured_ms"] for r in result["rows"]]) * 1000
        predicted = np.array([r[kernels]["predicted_ms"] for r in result["rows"]]) * 1000
        families = [r["model"].split("@")[0] for r in result["rows"]]
        for family in FAMILIES:
            mask = np.array([f == family for f in families])
            ax.scatter(measured[mask], predicted[mask], s=16, label=family)
        line = np.array([measured.min() * 0.8, measured.max() * 1.2])
        ax.plot(line, line, c="k", lw=0.8)
        ax.fill_between(line, line * 0.9, line * 1.1, color="0.85", label="±10%", zorder=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        figures = result[kernels]
        ax.set_title(
            f"{kernels}: {figures['within_10pct']:.0%} within ±10%, MAPE {figures['mape']:.1%}, "
            f"tau {figures['kendall_tau']:.2f}",
            fontsize=9,
        )
        ax.set_xlabel("measured latency (us, LiteRT, 1 thread)")
        ax.set_ylabel("predicted latency (us, host table: measured + fitted)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT_DIR / "cost_model_accuracy.png", dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--per-shape", type=int, default=7, help="candidates per family and input size")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result = run(args.per_shape)
    result["provenance"] = run_provenance()
    write_result((OUT_DIR / "cost_model_accuracy.json"), result)
    plot(result)
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
