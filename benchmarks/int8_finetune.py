"""Does fine-tuning ever harm uniform int8, and how far does it recover a pruned model: fine-tuning toward the
labels against fine-tuning toward the uncompressed model's outputs (teacher targets, the default).

Per family (digits, default settings, the study's pipeline) and per kind of targets, the learning-rate sweep
itself (``nas.training.learning_rate.sweep_learning_rate``, its two probes at every rate of its grid):
- ``int8_accuracy`` / ``half_channels_accuracy``: each probe's validation accuracy per rate (uniform int8;
  every prunable group at half its channels, int8), ``calibrated_accuracy`` the int8 probe without training;
- ``chosen_rate``: the sweep rule's choice, with ``int8_gain_pts`` (the int8 probe at that rate minus its
  calibrated accuracy: negative means fine-tuning loses against calibration alone) and
  ``half_channels_at_choice``;
- ``still_minus_calibrated_pts``: 300 steps at ``STILL_RATE``, where the weights hardly move: the validation
  split's own sensitivity to weights that hardly move.
The summary gives, per kind of targets, the smallest ``int8_gain_pts`` over the families and the mean
``half_channels_at_choice``.

Usage: python benchmarks/int8_finetune.py [--families mobilenet_v1,cnn]
Writes results/benchmarks/int8_finetune.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nas.compress.compression import build_compression
from nas.config import FINETUNE_TARGETS, SearchConfig
from nas.provenance import run_provenance
from nas.search.context import build_context, resolve_problem
from nas.training.evaluate import evaluate
from nas.training.finetune import finetune
from nas.training.learning_rate import RateChoice, sweep_learning_rate
from search_spaces.space import Candidate

OUT = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "int8_finetune.json"
FAMILIES = ("mobilenet_v1", "resnet8", "dscnn", "cnn", "mlp")
STILL_RATE = 1e-7


def family_rows(family: str, results: Path) -> list[dict[str, Any]]:
    """``family`` on digits: the sweep with each kind of targets."""
    rows = []
    for targets in FINETUNE_TARGETS:
        config = SearchConfig(model=family, objectives=("accuracy", "stored_bytes"))
        config = replace(config, finetune=replace(config.finetune, targets=targets))
        problem = resolve_problem(config)
        # The rate is swept below; a given one skips the context's own sweep.
        ctx = build_context(
            problem, results_dir=results, finetune_rate=RateChoice(learning_rate=1.0, source="given", scores={})
        )
        dataset = problem.dataset
        data = (ctx.x_train, ctx.targets, dataset.x_val, dataset.y_val)
        choice = sweep_learning_rate(ctx.trainer, ctx.graph, ctx.baseline.params, data, seed=config.seed)
        chosen = f"{choice.learning_rate:g}"
        calibrated = choice.int8_calibrated
        assert calibrated is not None
        # Two probes: the mean and the int8 probe's score give the half-channel probe's.
        half = {rate: round(2 * choice.scores[rate] - choice.int8_scores[rate], 4) for rate in choice.scores}
        rows.append(
            {
                "family": family,
                "targets": targets,
                "baseline_accuracy": round(ctx.baseline.val_accuracy, 4),
                "calibrated_accuracy": round(calibrated, 4),
                "int8_accuracy": {rate: round(value, 4) for rate, value in choice.int8_scores.items()},
                "half_channels_accuracy": half,
                "chosen_rate": chosen,
                "int8_gain_pts": round(100 * (choice.int8_scores[chosen] - calibrated), 2),
                "half_channels_at_choice": half[chosen],
                "still_minus_calibrated_pts": round(100 * (_still(ctx, config.seed) - calibrated), 2),
                "validation_examples": len(dataset.y_val),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _still(ctx: Any, seed: int) -> float:
    """Uniform int8 after 300 steps at ``STILL_RATE``."""
    candidate = Candidate.uniform(ctx.graph, weight_bits=8, activation_bits=8)
    compression = build_compression(ctx.graph, ctx.baseline.params, candidate)
    params, tuned = finetune(
        ctx.trainer, ctx.baseline.params, compression, ctx.x_train, ctx.targets, seed=seed, learning_rate=STILL_RATE
    )
    dataset = ctx.problem.dataset
    return evaluate(ctx.trainer, params, tuned, dataset.x_val, dataset.y_val).accuracy


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per kind of targets: the worst int8 gain at the chosen rate and the mean half-channel recovery."""
    out: dict[str, Any] = {}
    for targets in FINETUNE_TARGETS:
        mine = [row for row in rows if row["targets"] == targets]
        out[f"min_int8_gain_pts_{targets}"] = min(row["int8_gain_pts"] for row in mine)
        out[f"mean_half_channels_at_choice_{targets}"] = round(
            float(np.mean([row["half_channels_at_choice"] for row in mine])), 4
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row for family in args.families.split(",") for row in family_rows(family, Path(tmp))]
    result = {"rows": rows, **summary(rows), "provenance": run_provenance()}
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary(rows), indent=1))


if __name__ == "__main__":
    main()
