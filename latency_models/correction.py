"""A learned whole-model correction: what the per-layer sum still gets wrong, learned from models measured whole.

A table's figures come from micro-models timed alone, and the whole-model calibration
(``latency_models.calibration``) corrects them with a few scales. What neither sees depends on the model as a
whole: how its arithmetic is mixed, how large its activations and weights are (caches), how many ops and
boundaries it has. Every candidate a search times on the device (``--host-latency measured``) is a whole model
measured: it becomes a training point, and with enough of them a gradient-boosted regressor (scikit-learn)
learns the log ratio of measured to predicted latency from the model's features:

    latency = predicted x exp(g(features))

Points are kept per device, kernel set, table and CPU (a table measured again, or another CPU, starts a new set:
the old points described another predictor), in ``$NAS_MEASURED_MODELS`` (default
``$XDG_DATA_HOME/nas-compress/measured``, ``~/.local/share/nas-compress/measured``): data of this machine, not
of the project. The correction is used only when it earns its place: fitted on ``MIN_POINTS`` or more, it must
beat the uncorrected prediction in a cross-validation over its own points (within +-10% more often), or the
prediction is left as it was.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latency_models.errors import CostModelError
from latency_models.host import cpu_facts

MIN_POINTS = 20  # fewer measured models cannot show the correction helps
MAX_POINTS = 2000  # the latest models a correction is fitted on
FOLDS = 5
FEATURE_GROUPS = ("fixed", "float32", "int8", "int16x8", "float region")  # the calibration groups of the parts
FEATURE_OPS = ("conv", "dwconv", "dwconv_multiplier", "dense", "add", "avg_pool", "max_pool", "global_avg_pool")
MAX_LOG_FACTOR = math.log(2.0)  # the correction never more than doubles or halves a prediction
MEASURED_VARIABLE = "NAS_MEASURED_MODELS"


@dataclass(frozen=True, kw_only=True)
class WholeModel:
    """What the correction sees of a model: its uncalibrated latency (ms) and part count per calibration group
    (``LayerCost.group``; the invoke overhead is one ``fixed`` part), its uncalibrated latency per op kind, and its
    memory figures."""

    groups: dict[str, float]
    counts: dict[str, int]
    kinds: dict[str, float]  # uncalibrated latency (ms) per layer op kind
    ram_bytes: float
    flash_bytes: float

    @property
    def ops(self) -> int:
        """Ops of the model: every part but the invoke overhead."""
        return sum(self.counts.values()) - 1


@dataclass(frozen=True, kw_only=True)
class MeasuredModel:
    """A model measured whole: ``name`` is its file's content hash (a model is kept once), ``source`` where it
    was measured (a study's trial, a benchmark)."""

    name: str
    model: WholeModel
    measured_ms: float
    source: str = ""

    def __post_init__(self) -> None:
        if not math.isfinite(self.measured_ms) or self.measured_ms <= 0:
            raise CostModelError(f"measured model {self.name[:12]}: measured_ms must be > 0, got {self.measured_ms}")


def features(model: WholeModel, predicted_ms: float) -> list[float]:
    """The regressor's inputs: the prediction, the raw sum, the share and part count of each group, the share of
    each op kind, the op count and the memory figures, on log scales where they span decades."""
    raw = max(sum(model.groups.values()), 1e-9)
    row = [math.log(predicted_ms), math.log(raw), float(model.ops)]
    for group in FEATURE_GROUPS:
        row += [model.groups.get(group, 0.0) / raw, float(model.counts.get(group, 0))]
    row += [model.kinds.get(op, 0.0) / raw for op in FEATURE_OPS]  # XNNPACK's gap to the sum differs per op kind
    return [*row, math.log1p(model.ram_bytes), math.log1p(model.flash_bytes)]


Predict = Callable[[WholeModel], float]  # the prediction being corrected (the calibrated sum), in ms


@dataclass(frozen=True, kw_only=True)
class LearnedCorrection:
    """A fitted correction, its training range and how it did in cross-validation over its points."""

    regressor: Any  # a fitted sklearn GradientBoostingRegressor
    points: int
    predicted_range: tuple[float, float]  # ms: outside it the correction is extrapolated
    cross_validated: dict[str, float]

    def factor(self, model: WholeModel, predicted_ms: float) -> tuple[float, bool]:
        """The factor on ``predicted_ms`` and whether the model lies outside the points' predicted range."""
        factor = bounded(self.regressor.predict(np.array([features(model, predicted_ms)])))[0]
        low, high = self.predicted_range
        return float(factor), not low <= predicted_ms <= high

    def describe(self) -> str:
        """One line: the points and the cross-validated gain."""
        cv = self.cross_validated
        return (
            f"learned correction from {self.points} measured models (cross-validated within 10%: "
            f"{cv['corrected_within_10pct']:.0%} against {cv['predicted_within_10pct']:.0%} uncorrected)"
        )


def _regressor() -> Any:
    from sklearn.ensemble import GradientBoostingRegressor

    # Small and slow-learning: a few dozen points, and the target is mostly noise around a smooth trend.
    return GradientBoostingRegressor(
        loss="huber", n_estimators=150, learning_rate=0.05, max_depth=2, subsample=0.8, random_state=0
    )


def bounded(log_factors: np.ndarray) -> np.ndarray:
    """Factors from predicted log factors, never beyond ``MAX_LOG_FACTOR`` either way."""
    return np.exp(np.clip(log_factors, -MAX_LOG_FACTOR, MAX_LOG_FACTOR))


def _design(models: Sequence[MeasuredModel], predict: Predict) -> tuple[np.ndarray, ...]:
    predicted = np.array([predict(m.model) for m in models])
    x = np.array([features(m.model, p) for m, p in zip(models, predicted, strict=True)])
    y = np.log(np.array([m.measured_ms for m in models]) / predicted)
    return x, y, predicted


def within_10pct(predicted: np.ndarray, measured: np.ndarray) -> float:
    """Share of predictions within +-10% of the measurement."""
    return float(np.mean(np.abs(predicted - measured) <= 0.10 * measured))


def held_out_predictions(
    models: Sequence[MeasuredModel], predict: Predict, groups: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each model's prediction, and its corrected prediction by a correction fitted without it: ``FOLDS`` folds
    in a fixed shuffled order, or with ``groups`` one fold per group (a whole model family held out)."""
    x, y, predicted = _design(models, predict)
    if groups is None:
        order = np.random.default_rng(0).permutation(len(models))
        folds = [order[fold::FOLDS] for fold in range(FOLDS)]
    else:
        labels = np.asarray(groups)
        folds = [np.flatnonzero(labels == label) for label in sorted(set(groups))]
    corrected = np.empty(len(models))
    for held in folds:
        kept = np.setdiff1d(np.arange(len(models)), held)
        corrected[held] = predicted[held] * bounded(_regressor().fit(x[kept], y[kept]).predict(x[held]))
    return predicted, corrected


def cross_validate(models: Sequence[MeasuredModel], predict: Predict) -> dict[str, float]:
    """Within-10% shares of the prediction and of the held-out corrected prediction over ``models``."""
    predicted, corrected = held_out_predictions(models, predict)
    measured = np.array([m.measured_ms for m in models])
    return {
        "predicted_within_10pct": round(within_10pct(predicted, measured), 4),
        "corrected_within_10pct": round(within_10pct(corrected, measured), 4),
    }


def fit_correction(models: Sequence[MeasuredModel], predict: Predict) -> LearnedCorrection | None:
    """The correction of ``predict`` learned from ``models``; None with fewer than ``MIN_POINTS`` models or when
    it does not beat the uncorrected prediction in cross-validation."""
    if len(models) < MIN_POINTS:
        return None
    models = models[-MAX_POINTS:]  # the latest: a refit stays a second's work however long the history
    cross_validated = cross_validate(models, predict)
    if cross_validated["corrected_within_10pct"] <= cross_validated["predicted_within_10pct"]:
        return None
    x, y, predicted = _design(models, predict)
    return LearnedCorrection(
        regressor=_regressor().fit(x, y),
        points=len(models),
        predicted_range=(float(predicted.min()), float(predicted.max())),
        cross_validated=cross_validated,
    )


def measured_models_directory() -> Path:
    """Where measured models are kept (``$NAS_MEASURED_MODELS``, else under ``$XDG_DATA_HOME``)."""
    chosen = os.environ.get(MEASURED_VARIABLE, "").strip()
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "nas-compress" / "measured"


def measured_models_path(device: str, kernel_set: str, basis: str) -> Path:
    """The file of one device's kernel set, for the predictor fitted to ``basis`` on this CPU."""
    cpu = cpu_facts()
    key = json.dumps([basis, cpu.get("model"), cpu.get("machine"), cpu.get("flags")], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return measured_models_directory() / f"{device}.{kernel_set}.{digest}.json"


def measured_models_json(models: Sequence[MeasuredModel], header: Mapping[str, Any]) -> str:
    """The file's text: ``header`` (device, kernel set, basis, CPU) and the models."""
    return json.dumps({**header, "models": [asdict(m) for m in models]}, indent=1) + "\n"


def load_measured_models(path: Path) -> list[MeasuredModel]:
    """The models kept in ``path`` (none when it does not exist); a damaged file is refused in one line."""
    if not path.exists():
        return []
    try:
        raw = json.loads(path.read_text())
        return [
            MeasuredModel(
                name=str(m["name"]),
                model=WholeModel(
                    groups={str(g): float(v) for g, v in m["model"]["groups"].items()},
                    counts={str(g): int(v) for g, v in m["model"]["counts"].items()},
                    kinds={str(g): float(v) for g, v in m["model"]["kinds"].items()},
                    ram_bytes=float(m["model"]["ram_bytes"]),
                    flash_bytes=float(m["model"]["flash_bytes"]),
                ),
                measured_ms=float(m["measured_ms"]),
                source=str(m.get("source", "")),
            )
            for m in raw["models"]
        ]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise CostModelError(
            f"{path} is damaged ({err}); delete it (the next measured search starts it again)"
        ) from None


_FITTED: dict[tuple[Path, int, str], LearnedCorrection | None] = {}


def learned_correction(path: Path, predict: Predict, predictor: str) -> LearnedCorrection | None:
    """The correction of ``predict`` (identified by ``predictor``: the calibration it applies) fitted to the
    models in ``path``; fitted once while the file and the predictor are unchanged. None without one."""
    if not path.exists():
        return None
    key = (path, path.stat().st_mtime_ns, predictor)
    if key not in _FITTED:
        _FITTED[key] = fit_correction(load_measured_models(path), predict)
    return _FITTED[key]
