"""Whole-model calibration: from a cost model's raw sum to what whole models measure on the device, now.

A table's figures come from micro-models, each timed alone, some time ago; an analytic model's come from a
datasheet. A whole model on the device differs in ways neither sees: every op pays the interpreter's dispatch,
the ops share caches, each kind of arithmetic runs at its own real efficiency, and the machine itself drifts
(measured on this shared host: the same model moves by 5-15% within two minutes). A few reference models timed
whole on the device correct this:

    latency = sum over groups g of scale_g x raw_g + per_op_ms x ops

where raw_g is the model's raw latency in group g (the layers computing in float32, int8 or int16x8, and the
fixed whole-model terms), fitted by non-negative least absolute relative error (iteratively reweighted
non-negative least squares: one reference model the prior mispredicts badly must not drag the others), with
each group's scale shrunk toward the common scale (the median of measured / raw), so a group the points barely
exercise keeps the common scale. With fewer than ``MIN_FULL_FIT`` points only the common scale is fitted,
which is what a handful of measurements can support. The same fit corrects the host's own table, another
device's table, or an analytic profile (few-shot calibration).

Stored as JSON beside the device profile (``<device>.<kernel set>.calibration.json``) with its points, so a refit
is reproducible, and with its basis (the date of the table, or the analytic constants, it was fitted to): a
calibration never silently outlives what it corrects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import nnls

from latency_models.errors import CostModelError
from latency_models.files import atomic_write_text

MIN_FULL_FIT = 8  # points below which only the common scale is fitted
REWEIGHTS = 20  # iterations of the least-absolute-error fit
RESIDUAL_FLOOR = 0.02  # relative residual below which a point's weight stops growing
SHRINK = 0.5  # weight of the pull of each group's scale toward the common scale (rows of relative error are ~1)


@dataclass(frozen=True, kw_only=True)
class CalibrationPoint:
    """One reference model: its uncalibrated latency per group, its op count and its measured latency."""

    name: str
    groups: dict[str, float]
    ops: int
    measured_ms: float

    def __post_init__(self) -> None:
        for label, value in (("raw latency", self.raw_ms), ("measured_ms", self.measured_ms)):
            if not math.isfinite(value) or value <= 0:
                raise CostModelError(f"calibration point {self.name!r}: {label} must be finite and > 0, got {value}")
        if any(not math.isfinite(v) or v < 0 for v in self.groups.values()):
            raise CostModelError(f"calibration point {self.name!r}: a group's raw latency is negative or not finite")
        if self.ops < 1:
            raise CostModelError(f"calibration point {self.name!r}: a model has at least one op, got {self.ops}")

    @property
    def raw_ms(self) -> float:
        """The uncalibrated latency: the sum over groups."""
        return float(sum(self.groups.values()))


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """A fitted correction of one cost model (device and kernel set) and the points it was fitted on."""

    scale: float
    group_scales: dict[str, float]
    per_op_ms: float
    points: tuple[CalibrationPoint, ...]
    basis: str
    provenance: dict[str, Any] = field(default_factory=dict)

    def scale_of(self, group: str) -> float:
        """The scale of one group (the common scale where the fit had none for it)."""
        return self.group_scales.get(group, self.scale)

    def corrected(self, groups: Mapping[str, float], ops: int) -> float:
        """The calibrated latency of a model with raw latency ``groups`` over ``ops`` ops."""
        return sum(self.scale_of(g) * v for g, v in groups.items()) + self.per_op_ms * ops

    def describe(self) -> str:
        """One line: the scales and the dispatch cost."""
        groups = ", ".join(f"{g} x{v:.3f}" for g, v in sorted(self.group_scales.items()))
        return (
            f"calibration: x{self.scale:.3f}{f' ({groups})' if groups else ''}, {self.per_op_ms * 1000:.3f} us per op"
        )

    def fit_error(self) -> dict[str, float]:
        """In-sample share within +-10% and mean absolute percentage error on the calibration points."""
        errors = [abs(self.corrected(p.groups, p.ops) - p.measured_ms) / p.measured_ms for p in self.points]
        return {
            "within_10pct": round(float(np.mean([e <= 0.10 for e in errors])), 4),
            "mape": round(float(np.mean(errors)), 4),
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (inverse of ``calibration_from_dict``)."""
        return {
            "scale": self.scale,
            "group_scales": self.group_scales,
            "per_op_ms": self.per_op_ms,
            "basis": self.basis,
            "fit_error": self.fit_error(),
            "provenance": self.provenance,
            "points": [asdict(point) for point in self.points],
        }


def fit_calibration(
    points: Sequence[CalibrationPoint], *, basis: str, provenance: dict[str, Any] | None = None
) -> Calibration:
    """Fits the common scale, and with at least ``MIN_FULL_FIT`` points the group scales and the dispatch cost."""
    if not points:
        raise CostModelError("calibration needs at least one measured reference model")
    common = float(np.median([p.measured_ms / p.raw_ms for p in points]))
    group_scales: dict[str, float] = {}
    per_op = 0.0
    if len(points) >= MIN_FULL_FIT:
        names = sorted({g for p in points for g, v in p.groups.items() if v > 0})
        x = np.array([[p.groups.get(g, 0.0) for g in names] + [p.ops] for p in points])
        coefficients = _least_absolute_relative(x, np.array([p.measured_ms for p in points]), common)
        group_scales = {g: float(c) for g, c in zip(names, coefficients, strict=False)}
        per_op = float(coefficients[-1])
    return Calibration(
        scale=common,
        group_scales=group_scales,
        per_op_ms=per_op,
        points=tuple(points),
        basis=basis,
        provenance=provenance or {},
    )


def _least_absolute_relative(x: np.ndarray, y: np.ndarray, common: float) -> np.ndarray:
    """Non-negative coefficients minimizing sum |x @ c - y| / y plus the pull of each group coefficient (all but
    the last column, the op count) toward ``common``, by iteratively reweighted least squares."""
    groups = x.shape[1] - 1
    design = x / y[:, None]  # relative error: row i divided by y_i, target 1
    prior = np.hstack([SHRINK * np.eye(groups), np.zeros((groups, 1))])
    weights = np.ones(len(y))
    for _ in range(REWEIGHTS):
        root = np.sqrt(weights)
        rows = np.vstack([design * root[:, None], prior])
        target = np.concatenate([root, np.full(groups, SHRINK * common)])
        coefficients, _ = nnls(rows, target)
        weights = 1.0 / np.maximum(np.abs(design @ coefficients - 1.0), RESIDUAL_FLOOR)
    return coefficients


def calibration_from_dict(raw: Any, source: str = "calibration") -> Calibration:
    """Validates a calibration's JSON form."""
    try:
        return Calibration(
            scale=float(raw["scale"]),
            group_scales={str(g): float(v) for g, v in raw["group_scales"].items()},
            per_op_ms=float(raw["per_op_ms"]),
            basis=str(raw["basis"]),
            provenance=dict(raw.get("provenance", {})),
            points=tuple(
                CalibrationPoint(
                    name=str(p["name"]),
                    groups={str(g): float(v) for g, v in p["groups"].items()},
                    ops=int(p["ops"]),
                    measured_ms=float(p["measured_ms"]),
                )
                for p in raw["points"]
            ),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CostModelError(f"{source}: malformed calibration ({err}); calibrate again") from None


def save_calibration(calibration: Calibration, path: Path) -> None:
    """Writes ``calibration`` to ``path`` atomically."""
    atomic_write_text(path, json.dumps(calibration.to_dict(), indent=1) + "\n")


def load_calibration(path: Path) -> Calibration:
    """Reads a calibration written by ``save_calibration``."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CostModelError(f"{path.name} is not valid JSON ({err}); calibrate again") from None
    return calibration_from_dict(raw, path.name)
