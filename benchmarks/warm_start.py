"""Does seeding a search with sensitivity-based allocations help? The default problem searched twice per device
for 100 trials, once cold and once warm-started (``nas search --warm-start``: the HAWQ-style allocations under
budgets at 75, 50, 35 and 25% of the most accurate setting's latency are the first trials), with one seed.

The hypervolume of the feasible trials finished so far, after 25, 50 and 100 of them, in one space per device
(losses 1 - validation accuracy and latency, scaled over both runs, the reference 10% beyond the worst). The
warm start becomes the default only if it is at least as good at every mark on every device.

Usage: python benchmarks/warm_start.py [--trials 100] [--devices host,stm32h7]
Writes results/benchmarks/warm_start.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from nas.analysis.compare import scaled_hypervolume, shared_scale
from nas.analysis.pareto import trials_frame
from nas.config import SearchConfig
from nas.provenance import run_provenance
from nas.search.context import resolve_problem
from nas.search.study import run_search

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "warm_start.json"
MARKS = (25, 50, 100)


def feasible_losses(study: optuna.Study) -> np.ndarray:
    """(1 - validation accuracy, latency) of the feasible finished trials, in trial order."""
    trials = trials_frame(study)
    ok = trials[(trials["state"] == "COMPLETE") & (trials["feasible"] == True)].sort_values("number")  # noqa: E712
    return np.column_stack([1 - ok["accuracy"].to_numpy(float), ok["latency_ms"].to_numpy(float)])


def volumes_at(losses: np.ndarray, low: np.ndarray, span: np.ndarray, marks: tuple[int, ...]) -> dict[str, float]:
    """Hypervolume of the first ``mark`` feasible trials, per mark."""
    return {str(mark): round(scaled_hypervolume(losses[:mark], low, span), 4) for mark in marks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--devices", default="host,stm32h7")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    marks = tuple(m for m in MARKS if m <= args.trials) or (args.trials,)
    devices: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for device in args.devices.split(","):
            runs = {}
            for label, warm in (("cold", False), ("warm", True)):
                problem = resolve_problem(SearchConfig(device=device))
                summary = run_search(
                    problem, name=f"{label}-{device}", trials=args.trials, results_dir=Path(scratch), warm_start=warm
                )
                runs[label] = feasible_losses(summary.study)
            low, span = shared_scale(*runs.values())
            volumes = {label: volumes_at(losses, low, span, marks) for label, losses in runs.items()}
            devices[device] = {
                "hypervolume": volumes,
                "warm_at_least_as_good": {m: volumes["warm"][m] >= volumes["cold"][m] for m in volumes["cold"]},
            }
    improves = all(all(d["warm_at_least_as_good"].values()) for d in devices.values())
    result = {
        "devices": devices,
        "warm_start_improves": improves,
        "default": "warm start" if improves else "cold (the warm start did not help at every mark)",
        "provenance": run_provenance(),
    }
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    for device, figures in devices.items():
        print(device, figures["hypervolume"])
    print(f"warm start at least as good at every mark on every device: {improves}")


if __name__ == "__main__":
    main()
