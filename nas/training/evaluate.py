"""Accuracy figures of a compressed model: overall and per class (for the per-class audit)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.compress.models import Compression
from nas.training.finetune import Trainer, predict


@dataclass(frozen=True, kw_only=True)
class Accuracy:
    """Top-1 accuracy and accuracy per class (NaN for classes absent from the split)."""

    accuracy: float
    per_class: tuple[float, ...]


def accuracy_of(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> Accuracy:
    """Top-1 accuracy of ``predictions`` against ``labels``."""
    correct = predictions == labels
    per_class = tuple(
        float(correct[labels == c].mean()) if np.any(labels == c) else float("nan") for c in range(num_classes)
    )
    return Accuracy(accuracy=float(correct.mean()), per_class=per_class)


def evaluate(
    trainer: Trainer, params: dict[str, Any], compression: Compression, x: np.ndarray, y: np.ndarray
) -> Accuracy:
    """Accuracy of the compressed model on ``(x, y)``."""
    return accuracy_of(predict(trainer, params, compression, x), y, trainer.graph.num_classes)


def worst_class_drop(baseline_per_class: tuple[float, ...], candidate_per_class: tuple[float, ...]) -> float:
    """The largest per-class accuracy loss from two per-class accuracy vectors (classes absent from the split,
    NaN, are skipped): what ``--max-class-drop`` bounds during a search, on validation data."""
    drops = np.asarray(baseline_per_class, float) - np.asarray(candidate_per_class, float)
    drops = drops[np.isfinite(drops)]
    return float(drops.max()) if drops.size else 0.0
