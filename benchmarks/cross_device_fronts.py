"""One study, many devices: how much the front changes when a study searched for one device is re-scored for
the others without retraining (``nas pareto --device``).

The default problem (small CNN on digits, accuracy and host latency) is searched once; every named device then
re-scores its trials. Per device: where its latency comes from (measured or analytic), how many trials it can
run and fit, its front, the rank agreement of its latencies with the host's over the trials both run (Kendall
tau), and how many front members it shares with the host front (Jaccard overlap). A low tau or overlap says the
device needs its own search, not the host's front. The plot shows the fronts side by side.

Usage: python benchmarks/cross_device_fronts.py [--trials 60] [--study NAME --results-dir DIR (reuse a study)]
Writes results/benchmarks/cross_device_fronts.json and cross_device_fronts.png.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from scipy import stats

from latency_models.device import available_devices
from nas.analysis.report import device_fronts_plot, open_existing
from nas.analysis.rescore import Rescored, rescore_study
from nas.config import SearchConfig
from nas.paths import StudyPaths
from nas.provenance import run_provenance
from nas.search.context import resolve_problem
from nas.search.study import run_search, study_config

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "results" / "benchmarks"
STUDY = "cross-device"


def device_figures(rescored: Rescored, reference: Rescored) -> dict[str, Any]:
    """One device's figures beside the study device's (``reference``)."""
    trials = rescored.trials.set_index("number")
    base = reference.trials.set_index("number")
    both = trials["latency_ms"].notna() & base["latency_ms"].notna()
    tau = (
        float(stats.kendalltau(trials.loc[both, "latency_ms"], base.loc[both, "latency_ms"]).statistic)
        if both.sum() >= 3
        else None
    )
    front, reference_front = set(rescored.front["number"]), set(reference.front["number"])
    union = front | reference_front
    return {
        "latency_source": rescored.latency_source,
        "latency_kind": rescored.latency_kind,
        "budgets": rescored.budgets,
        "runnable_trials": int(trials["latency_ms"].notna().sum()),
        "feasible_trials": int((trials["feasible"] == True).sum()),  # noqa: E712
        "front": [
            {
                "trial": int(row["number"]),
                "val_accuracy": round(float(row["accuracy"]), 4),
                "latency_ms": float(row["latency_ms"]),
                "latency_provenance": row["latency_ms_provenance"],
                "ram_bytes": float(row["ram_bytes"]),
                "flash_bytes": float(row["flash_bytes"]),
            }
            for _, row in rescored.front.iterrows()
        ],
        "kendall_tau_vs_study_device": None if tau is None else round(tau, 4),
        "front_overlap_with_study_device": round(len(front & reference_front) / len(union), 4) if union else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--study", default=None, help="reuse this existing study instead of searching")
    parser.add_argument("--results-dir", type=Path, default=None, help="where --study lives")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as scratch:
        if args.study is None:
            results, name = Path(scratch), STUDY
            run_search(resolve_problem(SearchConfig()), name=name, trials=args.trials, results_dir=results)
        else:
            results, name = args.results_dir or ROOT / "results", args.study
        study = open_existing(name, results, None)
        config = study_config(study)
        devices = available_devices()
        reference = rescore_study(study, config.device)
        figures = {device: device_figures(rescore_study(study, device), reference) for device in devices}
        plot = device_fronts_plot(name, devices, results_dir=results, storage=None)
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plot, OUT_DIR / "cross_device_fronts.png")
        trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    taus = [f["kendall_tau_vs_study_device"] for d, f in figures.items() if d != config.device]
    result = {
        "study": {"model": config.model, "dataset": config.dataset, "objectives": list(config.objectives)},
        "study_device": config.device,
        "trials": len(trials),
        "devices": figures,
        "median_kendall_tau_vs_study_device": round(float(np.median([t for t in taus if t is not None])), 4),
        "provenance": run_provenance(),
        "study_dir": str(StudyPaths(results, name).root) if args.study else "temporary",
    }
    (OUT_DIR / "cross_device_fronts.json").write_text(json.dumps(result, indent=1) + "\n")
    for device, figure in figures.items():
        tau, overlap = figure["kendall_tau_vs_study_device"], figure["front_overlap_with_study_device"]
        print(
            f"{device:12s} {figure['latency_kind']:20s} runnable {figure['runnable_trials']:3d} feasible "
            f"{figure['feasible_trials']:3d} front {len(figure['front']):2d} tau {tau} overlap {overlap}"
        )


if __name__ == "__main__":
    main()
