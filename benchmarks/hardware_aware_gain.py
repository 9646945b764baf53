"""What searching for the device buys: the default problem searched for size and for host latency, measured.

The default problem (small CNN, digits) is searched twice with the same trial budget and seed: once with the
size objective (accuracy, stored bytes: the tool's objective before device costs) and once with host latency
(accuracy, latency_ms). Every front member of both studies is exported, verified, and measured on this host by
each export's cost check (XNNPACK, 1 thread, the cost tables' timing protocol; runtime tensor memory with
builtin kernels). At each accuracy level that both fronts reach (the test accuracy of the exported models, on a
grid of levels), the cheapest member of each front that reaches it is compared: measured latency and RAM of
the size front over those of the latency front. The figures reported are the medians over the levels, and
the values at the level nearest the uncompressed baseline's accuracy minus one point.

Usage: python benchmarks/hardware_aware_gain.py [--trials 100]
Writes results/benchmarks/hardware_aware_gain.json and hardware_aware_gain.png. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from result_file import write_result

from nas.analysis.pareto import front_frame, trials_frame
from nas.config import SearchConfig
from nas.deploy.study_export import export_trials
from nas.provenance import run_provenance
from nas.search.context import resolve_problem
from nas.search.record import TrialRecord
from nas.search.study import run_search

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "results" / "benchmarks"
OBJECTIVES = {"size": ("accuracy", "stored_bytes"), "latency": ("accuracy", "latency_ms")}


def search_and_measure(label: str, trials: int, results: Path) -> tuple[list[dict[str, Any]], float, float]:
    """Runs one study, exports its front; returns per member test accuracy, measured latency and RAM, the
    baseline's test accuracy, and the share of the trials' wall time spent computing device costs."""
    config = SearchConfig(objectives=OBJECTIVES[label])
    summary = run_search(resolve_problem(config), name=label, trials=trials, results_dir=results, show_progress=True)
    timed = [
        (stored.seconds["cost"], t.duration)
        for t in summary.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        if (stored := TrialRecord.of(t)) is not None
    ]
    cost_share = sum(cost for cost, _ in timed) / sum(d.total_seconds() for _, d in timed if d is not None)
    front = front_frame(trials_frame(summary.study), config.objectives)
    records = export_trials(label, [int(n) for n in front["number"]], results_dir=results)
    members = []
    for record in records:
        check = record.host_check
        if check is None:  # nothing measured to compare: the benchmark needs this host's cost tables
            raise SystemExit(f"trial {record.trial} of {label}: no host cost check (run `nas profile` first)")
        members.append(
            {
                "trial": record.trial,
                "passed": record.passed,
                "test_accuracy": record.jax_test_accuracy,
                "latency_ms": check.latency["xnnpack"].measured_ms,
                "predicted_latency_ms": check.latency["xnnpack"].predicted_ms,
                "ram_bytes": check.ram_bytes.measured,
                "file_bytes": record.file_bytes,
                "candidate": record.candidate,
            }
        )
    return members, summary.context.baseline.test_accuracy, cost_share


def cheapest_reaching(members: list[dict[str, Any]], level: float, key: str) -> dict[str, Any] | None:
    """The member with the lowest ``key`` among those whose test accuracy reaches ``level``."""
    reaching = [m for m in members if m["test_accuracy"] >= level - 1e-12]
    return min(reaching, key=lambda m: m[key]) if reaching else None


def compare(size: list[dict[str, Any]], latency: list[dict[str, Any]], baseline: float) -> dict[str, Any]:
    """Latency and RAM ratios (size front / latency front) at every accuracy level both fronts reach."""
    top = min(max(m["test_accuracy"] for m in size), max(m["test_accuracy"] for m in latency))
    bottom = max(min(m["test_accuracy"] for m in size), min(m["test_accuracy"] for m in latency))
    levels = np.round(np.arange(np.floor(bottom * 100) / 100, top + 1e-9, 0.005), 4)
    rows = []
    for level in levels:
        fast_size = cheapest_reaching(size, float(level), "latency_ms")
        fast_latency = cheapest_reaching(latency, float(level), "latency_ms")
        small_size = cheapest_reaching(size, float(level), "ram_bytes")
        small_latency = cheapest_reaching(latency, float(level), "ram_bytes")
        if None in (fast_size, fast_latency, small_size, small_latency):
            continue
        rows.append(
            {
                "accuracy_level": float(level),
                "latency_ms_size_front": fast_size["latency_ms"],  # type: ignore[index]
                "latency_ms_latency_front": fast_latency["latency_ms"],  # type: ignore[index]
                "latency_speedup": fast_size["latency_ms"] / fast_latency["latency_ms"],  # type: ignore[index]
                "ram_bytes_size_front": small_size["ram_bytes"],  # type: ignore[index]
                "ram_bytes_latency_front": small_latency["ram_bytes"],  # type: ignore[index]
                "ram_ratio": small_size["ram_bytes"] / small_latency["ram_bytes"],  # type: ignore[index]
            }
        )
    target = baseline - 0.01
    nearest = min(rows, key=lambda r: abs(r["accuracy_level"] - target)) if rows else None
    return {
        "levels": rows,
        "latency_speedup_at_matched_accuracy": round(statistics.median(r["latency_speedup"] for r in rows), 3),
        "ram_ratio_at_matched_accuracy": round(statistics.median(r["ram_ratio"] for r in rows), 3),
        "at_baseline_minus_1pt": nearest,
    }


def plot(size: list[dict[str, Any]], latency: list[dict[str, Any]], baseline: float) -> None:
    """Measured latency against test accuracy of both exported fronts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, members, colour in (
        ("searched for size", size, "tab:blue"),
        ("searched for host latency", latency, "tab:red"),
    ):
        xs = [m["latency_ms"] * 1000 for m in members]
        ys = [m["test_accuracy"] for m in members]
        ax.scatter(xs, ys, c=colour, s=24, label=label)
    ax.axhline(baseline, c="0.5", lw=0.8, ls="--", label="uncompressed baseline")
    ax.set_xscale("log")
    ax.set_xlabel("measured latency (us, LiteRT XNNPACK, 1 thread, this host)")
    ax.set_ylabel("test accuracy of the exported model")
    ax.set_title("fronts of the default problem, exported and measured")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT_DIR / "hardware_aware_gain.png", dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        size, baseline, _ = search_and_measure("size", args.trials, Path(tmp))
        latency, _, cost_share = search_and_measure("latency", args.trials, Path(tmp))
    result = {
        "problem": "cnn on digits, default space and fine-tuning",
        "trials_per_study": args.trials,
        "baseline_test_accuracy": baseline,
        "measurement": "exported front members, LiteRT XNNPACK 1 thread (latency), builtin kernels (RAM), this host",
        **compare(size, latency, baseline),
        "cost_lookup_share": round(cost_share, 6),
        "cost_lookup_share_definition": "device cost seconds / trial wall seconds, latency study "
        "(search_throughput.json has the figure over repeated runs)",
        "size_front": size,
        "latency_front": latency,
        "provenance": run_provenance(),
    }
    write_result((OUT_DIR / "hardware_aware_gain.json"), result)
    plot(size, latency, baseline)
    print(json.dumps({k: v for k, v in result.items() if k not in ("size_front", "latency_front", "levels")}, indent=1))


if __name__ == "__main__":
    main()
