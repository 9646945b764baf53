"""Which learning rate trains each built-in family's baseline best? Every family on digits and "shapes".

Each family is trained from scratch with the project's own baseline trainer (``train_baseline``: AdamW, cosine
decay, 60 epochs, batch 64) at each rate of ``--rates``, on digits and on the generated shapes dataset
(``benchmarks/families.py``), and evaluated folded on validation and test. Per family, ``best_rate`` is the
rate with the highest mean validation accuracy over the datasets and ``gain_over_default_pts`` what it gains
over the trainer's default rate, in points; ``declared_rate`` is the rate the family's spec declares
(``train_learning_rate``, else the default). A family declares its best rate where the gain exceeds
``DECLARE_ABOVE_PTS``: below that, the difference is a few validation images of one training run.

Usage: python benchmarks/baseline_rates.py [--rates 0.003,0.01,0.03] [--families ...] [--summarize]
Writes results/benchmarks/baseline_rates.json (``--summarize``: recomputes the summary from its rows).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from families import FAMILIES, OUT, shapes_dataset

from nas.config import DEFAULT_TRAIN_LEARNING_RATE, TrainConfig
from nas.provenance import run_provenance
from nas.training.data import load_dataset
from nas.training.train import train_baseline
from search_spaces.graph import analyze
from search_spaces.spec import load_model_spec


def train_row(family: str, dataset_name: str, source: str, rate: float, results: Path) -> dict[str, Any]:
    """One baseline trained at ``rate``: its validation and test accuracy and training seconds."""
    dataset = load_dataset(source)
    graph = analyze(load_model_spec(family), dataset.x_train.shape[1:], dataset.num_classes)
    baseline = train_baseline(graph, dataset, TrainConfig(learning_rate=rate), results_dir=results)
    meta = json.loads((baseline.cache_dir / "meta.json").read_text())
    return {
        "family": family,
        "dataset": dataset_name,
        "learning_rate": rate,
        "val_accuracy": round(baseline.val_accuracy, 4),
        "test_accuracy": round(baseline.test_accuracy, 4),
        "train_seconds": meta["train_seconds"],
    }


DECLARE_ABOVE_PTS = 1.0


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per family: the rate with the highest mean validation accuracy over the datasets, its gain over the
    default rate (points), and the rate the family's spec declares."""
    best, gain = {}, {}
    for family in dict.fromkeys(row["family"] for row in rows):
        by_rate: dict[float, list[float]] = {}
        for row in rows:
            if row["family"] == family:
                by_rate.setdefault(row["learning_rate"], []).append(row["val_accuracy"])
        mean = {rate: statistics.mean(scores) for rate, scores in by_rate.items()}
        best[family] = max(mean, key=lambda rate: mean[rate])
        gain[family] = round(100 * (mean[best[family]] - mean[DEFAULT_TRAIN_LEARNING_RATE]), 2)
    declared = {family: TrainConfig().rate(load_model_spec(family).train_learning_rate) for family in best}
    return {
        "best_rate": best,
        "gain_over_default_pts": gain,
        "declared_rate": declared,
        "declare_above_pts": DECLARE_ABOVE_PTS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="0.003,0.01,0.03")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--summarize", action="store_true", help="recompute the summary of the committed rows")
    args = parser.parse_args()
    path = OUT / "baseline_rates.json"
    if args.summarize:
        out = json.loads(path.read_text())
        out |= summary(out["rows"])
        path.write_text(json.dumps(out, indent=1) + "\n")
        print(json.dumps(summary(out["rows"])))
        return
    rates = [float(rate) for rate in args.rates.split(",")]
    families = args.families.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp)
        sources = {"digits": "digits", "shapes": str(shapes_dataset(results / "shapes.npz"))}
        for family in families:
            for name, source in sources.items():
                for rate in rates:
                    rows.append(train_row(family, name, source, rate, results))
                    print(json.dumps(rows[-1]), flush=True)
    out = {"rows": rows, **summary(rows), "provenance": run_provenance()}
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(summary(rows)))


if __name__ == "__main__":
    main()
