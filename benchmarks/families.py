"""Does the search work on every built-in family? Each family searched on digits and on a generated dataset.

For each (family, dataset): the uncompressed baseline, a search of ``--trials`` trials (accuracy against stored
size, so the figures do not depend on this machine's timing), and:
- ``baseline_accuracy`` (validation) and ``baseline_test_accuracy``;
- ``best_front_val_accuracy`` / ``best_front_test_accuracy``: the front's most accurate member;
  ``best_front_gap_pts``: baseline minus that member's validation accuracy, in points (target <= 1.0);
- ``int8_ptq_accuracy`` / ``int8_qat_accuracy``: uniform int8 calibrated only, and fine-tuned at the study's
  rate *without* keeping the better of the two (the trials do keep it), so ``qat_minus_ptq_pts`` measures the
  fine-tuning itself (target >= 0);
- ``trial_seconds_median``; ``within_2pts_share``: the share of trials within 2 points of the baseline;
- ``finetune_learning_rate``: the rate the sweep chose, with its probe scores.
``dscnn_over_cnn_trial_ratio`` compares the median trial seconds of the two families on digits (target <= 3;
this machine: 2 shared cores, the ratio is taken within one run).

The generated dataset ("shapes"): 8x8 single-channel images of six noisy shapes (horizontal, vertical and
diagonal bars, a square outline, a cross, a blob) at random positions, 1,800 training and 600 test images.

Usage: python benchmarks/families.py [--trials 30] [--families cnn,resnet8,dscnn,mobilenet_v1,mlp] [--resume]
Writes results/benchmarks/families.json and families.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from result_file import write_result

from nas.analysis.pareto import front_frame, trials_frame
from nas.config import SearchConfig
from nas.paths import StudyPaths
from nas.provenance import run_provenance
from nas.search.context import resolve_problem
from nas.search.objective import evaluate_candidate, load_trial_weights
from nas.search.record import TrialRecord
from nas.search.study import run_search
from nas.training.evaluate import evaluate
from search_spaces.space import Candidate

FAMILIES = ("cnn", "resnet8", "dscnn", "mobilenet_v1", "mlp")
OUT = Path(__file__).resolve().parents[1] / "results" / "benchmarks"


def shapes_dataset(path: Path, *, seed: int = 0, train: int = 1800, test: int = 600) -> Path:
    """Writes the generated 8x8 "shapes" dataset (six classes) as an ``.npz`` the CLI and API read."""
    rng = np.random.default_rng(seed)

    def image(label: int) -> np.ndarray:
        canvas = np.zeros((8, 8), np.float32)
        r, c = rng.integers(1, 5, size=2)
        if label == 0:
            canvas[r + 1, c : c + 4] = 1
        elif label == 1:
            canvas[r : r + 4, c + 1] = 1
        elif label == 2:
            for i in range(4):
                canvas[r + i, c + i] = 1
        elif label == 3:
            canvas[r : r + 4, c] = canvas[r : r + 4, c + 3] = canvas[r, c : c + 4] = canvas[r + 3, c : c + 4] = 1
        elif label == 4:
            canvas[r + 1, c : c + 4] = canvas[r : r + 4, c + 1] = 1
        else:
            canvas[r : r + 3, c : c + 3] = 1
        return np.clip(canvas + rng.normal(0, 0.35, canvas.shape), 0, None) * 16.0 / 1.5

    def split(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 6, size=count)
        return np.stack([image(int(y)) for y in labels])[..., None], labels.astype(np.int64)

    x_train, y_train = split(train)
    x_test, y_test = split(test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def family_run(family: str, dataset: str, trials: int, results: Path) -> dict[str, Any]:
    """One family on one dataset: its search, its baseline and the raw fine-tuning against calibration."""
    config = SearchConfig(model=family, dataset=dataset, objectives=("accuracy", "stored_bytes"))
    problem = resolve_problem(config)
    start = time.perf_counter()
    summary = run_search(problem, name=f"{family}-{Path(dataset).stem}", trials=trials, results_dir=results)
    search_seconds = time.perf_counter() - start
    ctx = summary.context
    uniform = Candidate.uniform(ctx.graph, weight_bits=8, activation_bits=8)
    raw = evaluate_candidate(ctx, uniform, seed=config.seed, keep_better=False)
    trials_table = trials_frame(summary.study)
    done = trials_table[trials_table["state"] == "COMPLETE"]
    front = front_frame(trials_table, config.objectives)
    records = _records(summary.study)
    baseline = ctx.baseline.val_accuracy
    if front.empty:  # no feasible trial: every one failed its parity check (or a budget)
        best_val, best_test = None, None
    else:
        best = front.sort_values("accuracy", ascending=False).iloc[0]
        paths = StudyPaths(results, summary.study.study_name)
        params, compression = load_trial_weights(paths.trial_weights(int(best["number"])))
        arrays = problem.dataset
        best_val = float(best["accuracy"])
        best_test = evaluate(ctx.trainer, params, compression, arrays.x_test, arrays.y_test).accuracy
    return {
        "family": family,
        "dataset": Path(dataset).stem,
        "trials": len(done),
        "search_minutes": round(search_seconds / 60, 2),
        "baseline_accuracy": round(baseline, 4),
        "baseline_test_accuracy": round(ctx.baseline.test_accuracy, 4),
        "front_size": len(front),
        "best_front_val_accuracy": None if best_val is None else round(best_val, 4),
        "best_front_test_accuracy": None if best_test is None else round(best_test, 4),
        # With no feasible member the gap is the whole baseline accuracy: nothing usable was found.
        "best_front_gap_pts": round(100 * (baseline - (best_val or 0.0)), 2),
        "int8_ptq_accuracy": round(raw.calibrated_accuracy, 4),
        "int8_qat_accuracy": round(raw.val.accuracy, 4),
        "qat_minus_ptq_pts": round(100 * (raw.val.accuracy - raw.calibrated_accuracy), 2),
        "trial_seconds_median": round(float(statistics.median(done["duration_s"])), 3),
        "finetune_seconds_median": round(statistics.median(_seconds(records, "finetune")), 3),
        "parity_seconds_median": round(statistics.median(_seconds(records, "parity") or [0.0]), 3),
        "parity_failed_share": round(float(np.mean([r.diverged for r in records])), 3),
        "within_2pts_share": round(float((done["accuracy"] >= baseline - 0.02).mean()), 3),
        "kept_calibrated_share": round(float(np.mean([r.recovery == "calibrated" for r in records])), 3),
        "finetune_learning_rate": {
            "chosen": ctx.finetune_rate.learning_rate,
            "probe_scores": ctx.finetune_rate.scores,
        },
    }


def _records(study) -> list[TrialRecord]:
    """The records of the trials that recorded one."""
    return [record for t in study.trials if (record := TrialRecord.of(t)) is not None]


def _seconds(records: list[TrialRecord], step: str) -> list[float]:
    """Each trial's seconds in one step (``finetune``, ``parity``), where the trial has it."""
    return [r.seconds[step] for r in records if step in r.seconds]


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Baseline against best front member, per family and dataset."""
    labels = [f"{r['family']}\n{r['dataset']}" for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 0.9), 3.6))
    ax.bar(x - 0.2, [r["baseline_accuracy"] for r in rows], 0.4, label="uncompressed (validation)")
    ax.bar(x + 0.2, [r["best_front_val_accuracy"] or 0.0 for r in rows], 0.4, label="best front member (validation)")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--datasets", default="digits,shapes")
    parser.add_argument("--resume", action="store_true", help="keep the rows of an interrupted run and run the rest")
    args = parser.parse_args()
    partial = OUT / "families.partial.json"
    rows = json.loads(partial.read_text()) if args.resume and partial.exists() else []
    done = {(r["family"], r["dataset"]) for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp)
        sources = {"digits": "digits", "shapes": str(shapes_dataset(results / "shapes.npz"))}
        for dataset in args.datasets.split(","):
            for family in args.families.split(","):
                if (family, dataset) in done:
                    continue
                row = family_run(family, sources[dataset], args.trials, results)
                print(json.dumps(row), flush=True)
                rows.append(row)
                OUT.mkdir(parents=True, exist_ok=True)
                partial.write_text(json.dumps(rows, indent=1))  # a long run keeps its rows (--resume)
    digits = {r["family"]: r for r in rows if r["dataset"] == "digits"}
    summary: dict[str, Any] = {"rows": rows, "provenance": run_provenance()}
    if "dscnn" in digits and "cnn" in digits:
        ratio = digits["dscnn"]["trial_seconds_median"] / digits["cnn"]["trial_seconds_median"]
        summary["dscnn_over_cnn_trial_ratio"] = round(ratio, 2)
        steps = digits["dscnn"]["finetune_seconds_median"] / digits["cnn"]["finetune_seconds_median"]
        summary["dscnn_over_cnn_finetune_ratio"] = round(steps, 2)
    summary["max_best_front_gap_pts"] = max(r["best_front_gap_pts"] for r in rows)
    summary["min_qat_minus_ptq_pts"] = min(r["qat_minus_ptq_pts"] for r in rows)
    write_result(OUT / "families.json", summary)
    (OUT / "families.partial.json").unlink(missing_ok=True)
    plot(rows, OUT / "families.png")


if __name__ == "__main__":
    main()
