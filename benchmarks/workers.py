"""Search throughput with 1 and 2 workers on one study, on SQLite (the default) and on PostgreSQL.

Each run is the real command, ``nas search --workers N``, on the default problem (small CNN, digits, accuracy
against host latency, 300 fine-tuning steps) from an empty results directory with the baseline already
cached (trained once, in a warm-up run, so no run pays for it). Throughput is counted over the trial phase
only: finished trials / (last trial's completion - first trial's start), from the timestamps Optuna stores;
each worker's compilation falls inside its first trial, as it would for a user.

    scaling_efficiency = trials_per_minute_2 / (2 x trials_per_minute_1)

This machine has 2 shared cores, so 2 workers each get one core: the figure says how much of a second core a
second worker turns into trials. Nothing else heavy may run meanwhile.

Usage: python benchmarks/workers.py [--trials 24]
Writes results/benchmarks/workers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from result_file import write_result  # noqa: E402

from nas.provenance import run_provenance  # noqa: E402
from nas.search.storage import optuna_storage  # noqa: E402
from tests import postgres  # noqa: E402

OUT = ROOT / "results" / "benchmarks" / "workers.json"


def search(results: Path, study: str, trials: int, workers: int, storage: str | None) -> None:
    """Runs ``nas search`` as a user would."""
    command = [sys.executable, "-m", "nas.cli", "search", "--study", study, "--trials", str(trials)]
    command += ["--workers", str(workers), "--results-dir", str(results), "--no-progress"]
    command += ["--storage", storage] if storage else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=3600)


def trials_per_minute(study: optuna.Study) -> tuple[float, int]:
    """Finished trials per minute of the trial phase, and how many finished."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    start = min(t.datetime_start for t in complete if t.datetime_start)
    end = max(t.datetime_complete for t in complete if t.datetime_complete)
    return len(complete) / ((end - start).total_seconds() / 60), len(complete)


def measure(results: Path, name: str, trials: int, workers: int, url: str | None) -> dict[str, float]:
    search(results, name, trials, workers, url)
    storage = optuna_storage(url or f"sqlite:///{results / name / 'study.db'}")
    try:
        rate, finished = trials_per_minute(optuna.load_study(study_name=name, storage=storage))
    finally:
        if isinstance(storage, RDBStorage):
            storage.engine.dispose()
    print(f"{name}: {workers} worker(s), {finished} trials, {rate:.1f} trials/min", flush=True)
    return {"trials_per_minute": rate, "trials": finished}


def storage_figures(results: Path, label: str, trials: int, url_of) -> dict[str, float]:
    one = measure(results, f"{label}_1", trials, 1, url_of(f"{label}_1"))
    two = measure(results, f"{label}_2", trials, 2, url_of(f"{label}_2"))
    return {
        "trials_per_minute_1": round(one["trials_per_minute"], 2),
        "trials_per_minute_2": round(two["trials_per_minute"], 2),
        "scaling_efficiency": round(two["trials_per_minute"] / (2 * one["trials_per_minute"]), 3),
        "trials_finished_1": one["trials"],
        "trials_finished_2": two["trials"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp)
        search(results, "warmup", 1, 1, None)  # trains and caches the baseline every run below reuses
        figures: dict[str, dict[str, Any]] = {
            "sqlite": storage_figures(results, "sqlite", args.trials, lambda name: None)
        }
        bin_dir = postgres.binaries()
        if bin_dir is None:
            figures["postgresql"] = {"skipped": "PostgreSQL could not be installed here"}
        else:
            with postgres.server(bin_dir) as url:
                # One server, one database; the studies differ by name.
                figures["postgresql"] = storage_figures(results, "postgresql", args.trials, lambda name: url)
    result = {
        "benchmark": "workers",
        "problem": "cnn on digits, accuracy vs host latency, 300 fine-tuning steps, baseline cached",
        "cores": len(os.sched_getaffinity(0)),
        **{f"{key}": value for key, value in figures["sqlite"].items()},
        "by_storage": figures,
        "provenance": run_provenance(),
    }
    write_result(OUT, result)
    print(json.dumps({k: v for k, v in result.items() if k != "provenance"}, indent=1))


if __name__ == "__main__":
    main()
