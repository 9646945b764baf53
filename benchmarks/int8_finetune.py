"""Does fine-tuning ever harm uniform int8? Each family's uniform int8 model calibrated only, against the same
model fine-tuned for the study's steps at each rate of the sweep and at a rate so small the weights hardly move.

Per family (digits, default settings, the study's pipeline: ``nas.training.finetune.finetune`` then validation
accuracy): ``calibrated_accuracy`` and ``finetuned_accuracy`` per rate; ``best_minus_calibrated_pts`` the best
rate's gain (negative: every rate loses); ``still_minus_calibrated_pts`` what 300 steps at ``STILL_RATE`` change,
the validation split's own sensitivity to weights that hardly move.

Usage: python benchmarks/int8_finetune.py [--families mobilenet_v1,cnn]
Writes results/benchmarks/int8_finetune.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from nas.compress.compression import build_compression
from nas.config import SearchConfig
from nas.provenance import run_provenance
from nas.search.context import build_context, resolve_problem
from nas.training.evaluate import evaluate
from nas.training.finetune import finetune
from nas.training.learning_rate import RATE_GRID
from search_spaces.space import Candidate

OUT = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "int8_finetune.json"
STILL_RATE = 1e-7


def family_row(family: str, results: Path) -> dict[str, Any]:
    """Uniform int8 of ``family`` on digits, calibrated only and fine-tuned at each rate."""
    problem = resolve_problem(SearchConfig(model=family, objectives=("accuracy", "stored_bytes")))
    ctx = build_context(problem, results_dir=results)
    candidate = Candidate.uniform(ctx.graph, weight_bits=8, activation_bits=8)
    compression = build_compression(ctx.graph, ctx.baseline.params, candidate)
    dataset = problem.dataset

    def accuracy(**settings: Any) -> float:
        params, tuned = finetune(
            ctx.trainer, ctx.baseline.params, compression, ctx.x_train, ctx.targets, seed=0, **settings
        )
        return evaluate(ctx.trainer, params, tuned, dataset.x_val, dataset.y_val).accuracy

    calibrated = accuracy(steps=0)
    tuned = {f"{rate:g}": accuracy(learning_rate=rate) for rate in (*RATE_GRID, STILL_RATE)}
    best = max(value for rate, value in tuned.items() if rate != f"{STILL_RATE:g}")
    return {
        "family": family,
        "baseline_accuracy": round(ctx.baseline.val_accuracy, 4),
        "calibrated_accuracy": round(calibrated, 4),
        "finetuned_accuracy": {rate: round(value, 4) for rate, value in tuned.items()},
        "best_minus_calibrated_pts": round(100 * (best - calibrated), 2),
        "still_minus_calibrated_pts": round(100 * (tuned[f"{STILL_RATE:g}"] - calibrated), 2),
        "validation_examples": len(dataset.y_val),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="mobilenet_v1,cnn")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [family_row(family, Path(tmp)) for family in args.families.split(",")]
    OUT.write_text(json.dumps({"rows": rows, "provenance": run_provenance()}, indent=1) + "\n")
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
