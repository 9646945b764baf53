"""Degraded inputs: how much accuracy a model keeps when its input is worse than the test split.

Images (inputs with a spatial layout) get Gaussian noise, a brightness shift, a contrast cut and an occluding
square; flat (tabular) inputs get feature noise and missing features (set to the feature's training mean).
Severities are fixed and relative to the data's range, so figures compare across models of one dataset; every
corruption is seeded, so two models see the same degraded examples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.compress.models import Compression
from nas.training.finetune import Trainer, predict

SEED = 7


@dataclass(frozen=True, kw_only=True)
class Corruption:
    """One kind of degradation at one severity."""

    name: str
    severity: str
    apply: Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _noise(scale: float, span: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    return lambda x, rng: x + rng.normal(0.0, scale * span, x.shape).astype(x.dtype)


def _occlude(fraction: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def apply(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = x.copy()
        height, width = x.shape[1:3]
        side_h, side_w = max(1, round(height * fraction)), max(1, round(width * fraction))
        for image in out:
            top, left = rng.integers(0, height - side_h + 1), rng.integers(0, width - side_w + 1)
            image[top : top + side_h, left : left + side_w] = 0.0
        return out

    return apply


def corruptions(x_train: np.ndarray) -> list[Corruption]:
    """The degradations for inputs shaped like ``x_train`` (image or flat), scaled to its range."""
    low, high = float(x_train.min()), float(x_train.max())
    span = high - low or 1.0
    if x_train.ndim == 4:
        return [
            Corruption(name="gaussian_noise", severity=f"sigma {0.1:g} x range", apply=_noise(0.1, span)),
            Corruption(name="strong_noise", severity=f"sigma {0.25:g} x range", apply=_noise(0.25, span)),
            Corruption(name="brightness", severity="+20% of range", apply=lambda x, rng: x + 0.2 * span),
            Corruption(
                name="contrast", severity="halved around the mean", apply=lambda x, rng: (x - x.mean()) * 0.5 + x.mean()
            ),
            Corruption(name="occlusion", severity="a blank square of 1/3 the side", apply=_occlude(1 / 3)),
        ]
    means = x_train.mean(axis=0)

    def missing(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mask = rng.random(x.shape) < 0.2
        return np.where(mask, means, x).astype(x.dtype)

    return [
        Corruption(name="feature_noise", severity=f"sigma {0.1:g} x range", apply=_noise(0.1, span)),
        Corruption(name="missing_features", severity="20% of features set to their mean", apply=missing),
    ]


def degraded_sets(x: np.ndarray, x_train: np.ndarray) -> dict[str, tuple[Corruption, np.ndarray]]:
    """Each corruption applied once to ``x`` (clipped to the training range), by name."""
    low, high = float(x_train.min()), float(x_train.max())
    sets = {}
    for index, corruption in enumerate(corruptions(x_train)):
        rng = np.random.default_rng(SEED + index)
        sets[corruption.name] = (corruption, np.clip(corruption.apply(x, rng), low, high).astype(x.dtype))
    return sets


def robust_accuracy(
    trainer: Trainer,
    params: dict[str, Any],
    compression: Compression,
    sets: dict[str, tuple[Corruption, np.ndarray]],
    labels: np.ndarray,
) -> dict[str, float]:
    """Accuracy on each degraded set, and their mean under ``mean``."""
    found = {name: float((predict(trainer, params, compression, x) == labels).mean()) for name, (_, x) in sets.items()}
    return {**found, "mean": float(np.mean(list(found.values())))}
