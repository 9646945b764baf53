"""The per-class audit: who pays for a compression.

Overall accuracy can hide a few classes that lose much more than the average (Hooker et al., "Characterising
Bias in Compressed Models", 2020). For a compressed model and the uncompressed baseline, on the same examples,
the audit gives each class's accuracy change with a paired, class-stratified bootstrap confidence interval
(resampling examples within each class, the two models' outcomes on an example kept together), the worst
class, and the classes whose drop exceeds twice the mean drop over classes or ``ABSOLUTE_FLAG_DROP`` whatever
the mean (a collapse that hits most classes raises the mean so far that the relative rule alone missed a 94%
drop), flagged when their interval also excludes no change (so that one example more or less in a class of
thirty does not raise a flag).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from nas.compress.compression import build_compression
from nas.paths import StudyPaths
from nas.search.context import ModelContext
from nas.search.objective import load_trial_weights
from nas.training.finetune import predict
from search_spaces.space import Candidate

RESAMPLES = 2000
CONFIDENCE = 0.95
FLAG_FACTOR = 2.0
ABSOLUTE_FLAG_DROP = 0.2  # a class losing more than 20 points is flagged whatever the other classes lose


@dataclass(frozen=True, kw_only=True)
class ClassChange:
    """One class: both models' accuracies on its examples, the change and its confidence interval."""

    label: int
    examples: int
    baseline: float
    candidate: float
    change: float
    low: float
    high: float
    flagged: bool

    @property
    def drop(self) -> float:
        """The accuracy this class lost (negative: it gained)."""
        return -self.change


@dataclass(frozen=True, kw_only=True)
class Audit:
    """The per-class audit of one compressed model against the baseline."""

    overall_change: float
    mean_drop: float
    worst: ClassChange
    classes: tuple[ClassChange, ...]
    confidence: float
    resamples: int

    @property
    def flagged(self) -> tuple[int, ...]:
        """Labels of the classes whose drop exceeds twice the mean drop (or ``ABSOLUTE_FLAG_DROP``), with an
        interval that excludes zero."""
        return tuple(c.label for c in self.classes if c.flagged)

    def to_dict(self) -> dict[str, object]:
        """The JSON form."""
        return {
            "overall_change": self.overall_change,
            "mean_drop": self.mean_drop,
            "worst_class": self.worst.label,
            "worst_drop": self.worst.drop,
            "worst_drop_interval": [-self.worst.high, -self.worst.low],
            "flagged_classes": list(self.flagged),
            "confidence": self.confidence,
            "resamples": self.resamples,
            "classes": [asdict(c) for c in self.classes],
        }


def audit_classes(
    labels: np.ndarray,
    baseline_correct: np.ndarray,
    candidate_correct: np.ndarray,
    *,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Audit:
    """The audit of ``candidate_correct`` against ``baseline_correct`` (per-example booleans on ``labels``)."""
    labels = np.asarray(labels)
    if not len(labels) == len(baseline_correct) == len(candidate_correct) or len(labels) == 0:
        raise ValueError("labels and both models' outcomes must be non-empty and of one length")
    rng = np.random.default_rng(seed)
    tail = (1 - confidence) / 2
    present = np.unique(labels)
    intervals, changes = {}, {}
    for label in present:
        difference = candidate_correct[labels == label].astype(float) - baseline_correct[labels == label]
        draws = rng.integers(0, len(difference), size=(resamples, len(difference)))
        resampled = difference[draws].mean(axis=1)
        changes[int(label)] = float(difference.mean())
        intervals[int(label)] = (float(np.quantile(resampled, tail)), float(np.quantile(resampled, 1 - tail)))
    mean_drop = -float(np.mean(list(changes.values())))
    threshold = min(FLAG_FACTOR * max(mean_drop, 0.0), ABSOLUTE_FLAG_DROP)
    classes = tuple(
        ClassChange(
            label=label,
            examples=int(np.sum(labels == label)),
            baseline=float(baseline_correct[labels == label].mean()),
            candidate=float(candidate_correct[labels == label].mean()),
            change=change,
            low=intervals[label][0],
            high=intervals[label][1],
            flagged=-change > threshold and -intervals[label][1] > 0,
        )
        for label, change in changes.items()
    )
    worst = min(classes, key=lambda c: (c.change, c.label))
    return Audit(
        overall_change=float(np.mean(candidate_correct) - np.mean(baseline_correct)),
        mean_drop=mean_drop,
        worst=worst,
        classes=classes,
        confidence=confidence,
        resamples=resamples,
    )


def audit_front(
    ctx: ModelContext, paths: StudyPaths, front: pd.DataFrame, baseline_params: dict[str, Any]
) -> tuple[pd.DataFrame, dict[int, Audit]]:
    """Every front member audited on the test split against the uncompressed baseline: the front with the worst
    class, its drop and interval, and the flagged classes as columns, and the full audits by trial number."""
    dataset = ctx.problem.dataset
    identity = build_compression(ctx.graph, baseline_params, Candidate.uncompressed(ctx.graph))
    baseline_correct = predict(ctx.trainer, baseline_params, identity, dataset.x_test) == dataset.y_test
    audits = {}
    for number in front["number"]:
        params, compression = load_trial_weights(paths.trial_weights(int(number)))
        correct = predict(ctx.trainer, params, compression, dataset.x_test) == dataset.y_test
        audits[int(number)] = audit_classes(dataset.y_test, baseline_correct, correct, seed=int(number))
    out = front.copy()
    out["worst_class"] = [audits[int(n)].worst.label for n in front["number"]]
    out["worst_class_drop"] = [round(audits[int(n)].worst.drop, 4) for n in front["number"]]
    out["worst_class_drop_ci"] = [
        f"[{-audits[int(n)].worst.high:.3f}, {-audits[int(n)].worst.low:.3f}]" for n in front["number"]
    ]
    out["flagged_classes"] = [" ".join(map(str, audits[int(n)].flagged)) for n in front["number"]]
    return out, audits
