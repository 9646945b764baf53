"""One study, many devices: how much the front changes when a study searched for one device is re-scored for
the others without retraining (``nas pareto --device``).

The default problem (small CNN on digits, accuracy and latency) is searched; every named device then re-scores
its trials. Per device: where its latency comes from (measured or analytic), how many trials it can run and fit,
its front, the rank agreement of its latencies with the study device's over the trials both run (Kendall tau),
and how many front members it shares with the study device's front (Jaccard overlap). A low tau or overlap says
the device needs its own search, not another device's front. The plot shows the fronts side by side.

Two studies are run: one searched for the host, one for the STM32H7, whose precisions (int8, int16 activations,
float) every device runs, so its trials can be costed everywhere; a host study's mixed 4- and 16-bit weights
are not runnable on the microcontrollers at all.

Usage: python benchmarks/cross_device_fronts.py [--trials 60] [--searched-for host,stm32h7]
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
from nas.analysis.report import device_fronts_plot
from nas.analysis.rescore import Rescored, rescore_study
from nas.config import SearchConfig
from nas.provenance import run_provenance
from nas.search.context import resolve_problem
from nas.search.study import open_existing, run_search, study_config

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


def study_figures(study: optuna.Study, results: Path, name: str, plot: bool) -> dict[str, Any]:
    """Every device's figures for one study (and its side-by-side plot, copied under results/benchmarks)."""
    config = study_config(study)
    devices = available_devices()
    reference = rescore_study(study, config.device)
    figures = {device: device_figures(rescore_study(study, device), reference) for device in devices}
    if plot:
        path = device_fronts_plot(name, devices, results_dir=results, storage=None)
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, OUT_DIR / "cross_device_fronts.png")
    taus = [f["kendall_tau_vs_study_device"] for d, f in figures.items() if d != config.device]
    known = [t for t in taus if t is not None]
    return {
        "study": {"model": config.model, "dataset": config.dataset, "objectives": list(config.objectives)},
        "study_device": config.device,
        "trials": len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))),
        "devices": figures,
        "median_kendall_tau_vs_study_device": round(float(np.median(known)), 4) if known else None,
        "devices_with_no_runnable_trial": [d for d, f in figures.items() if f["runnable_trials"] == 0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument(
        "--searched-for",
        default="host,stm32h7",
        help="devices to search for, one study each; the plot is drawn from the last",
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies = {}
    searched = [d.strip() for d in args.searched_for.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        results = Path(scratch)
        for index, device in enumerate(searched):
            name = f"{STUDY}-{device}"
            run_search(resolve_problem(SearchConfig(device=device)), name=name, trials=args.trials, results_dir=results)
            study = open_existing(name, results, None)
            studies[device] = study_figures(study, results, name, plot=index == len(searched) - 1)
    result = {"studies": studies, "plot": f"cross_device_fronts.png (the study searched for {searched[-1]})"}
    result["provenance"] = run_provenance()
    (OUT_DIR / "cross_device_fronts.json").write_text(json.dumps(result, indent=1) + "\n")
    for device, figures in studies.items():
        print(f"study searched for {device}:")
        for target, figure in figures["devices"].items():
            tau, overlap = figure["kendall_tau_vs_study_device"], figure["front_overlap_with_study_device"]
            print(
                f"  {target:12s} {figure['latency_kind']:20s} runnable {figure['runnable_trials']:3d} feasible "
                f"{figure['feasible_trials']:3d} front {len(figure['front']):2d} tau {tau} overlap {overlap}"
            )


if __name__ == "__main__":
    main()
