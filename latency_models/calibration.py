"""Whole-model calibration: from a table's raw sum to what whole models measure on the device, now.

A table's figures come from micro-models, each timed alone, some time ago. A whole model differs in three ways
the table cannot see: every op pays the interpreter's dispatch (the table's net latencies take it out with the
invoke overhead), the ops share caches, and the machine itself drifts (measured on this shared host: the same
model moves by 5-15% within two minutes). A few reference models timed whole on the device correct all three:

    latency = scale x raw + per_op_ms x ops

fitted by non-negative least absolute relative error (iteratively reweighted non-negative least squares: one
reference model the table mispredicts badly must not drag the correction of all the others). With fewer than
``MIN_FULL_FIT`` points only ``scale`` is fitted (the median of measured / raw), which is what a handful of
measurements can support. The same fit calibrates another device's table or an analytic profile
from a few models measured there (few-shot calibration).

Stored as JSON beside the table (``<device>.<kernel set>.calibration.json``) with its points, so a refit is
reproducible, and with the date of the table it was fitted to: a calibration never silently outlives its table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import nnls

from latency_models.errors import CostModelError
from latency_models.files import atomic_write_text

MIN_FULL_FIT = 8  # points below which only the scale is fitted
REWEIGHTS = 20  # iterations of the least-absolute-error fit
RESIDUAL_FLOOR = 0.02  # relative residual below which a point's weight stops growing


@dataclass(frozen=True, kw_only=True)
class CalibrationPoint:
    """One reference model: its uncalibrated prediction, its op count and its measured latency."""

    name: str
    raw_ms: float
    ops: int
    measured_ms: float

    def __post_init__(self) -> None:
        for label, value in (("raw_ms", self.raw_ms), ("measured_ms", self.measured_ms)):
            if not math.isfinite(value) or value <= 0:
                raise CostModelError(f"calibration point {self.name!r}: {label} must be finite and > 0, got {value}")
        if self.ops < 1:
            raise CostModelError(f"calibration point {self.name!r}: a model has at least one op, got {self.ops}")


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """A fitted correction of one table (device and kernel set) and the points it was fitted on."""

    scale: float
    per_op_ms: float
    points: tuple[CalibrationPoint, ...]
    table_date: str
    provenance: dict[str, Any] = field(default_factory=dict)

    def corrected(self, raw_ms: float, ops: int) -> float:
        """The calibrated latency of a model whose table sum is ``raw_ms`` over ``ops`` ops."""
        return self.scale * raw_ms + self.per_op_ms * ops

    def fit_error(self) -> dict[str, float]:
        """In-sample share within +-10% and mean absolute percentage error on the calibration points."""
        errors = [abs(self.corrected(p.raw_ms, p.ops) - p.measured_ms) / p.measured_ms for p in self.points]
        return {
            "within_10pct": round(float(np.mean([e <= 0.10 for e in errors])), 4),
            "mape": round(float(np.mean(errors)), 4),
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (inverse of ``calibration_from_dict``)."""
        return {
            "scale": self.scale,
            "per_op_ms": self.per_op_ms,
            "table_date": self.table_date,
            "fit_error": self.fit_error(),
            "provenance": self.provenance,
            "points": [asdict(point) for point in self.points],
        }


def fit_calibration(
    points: Sequence[CalibrationPoint], *, table_date: str, provenance: dict[str, Any] | None = None
) -> Calibration:
    """Fits ``scale`` (and ``per_op_ms`` given at least ``MIN_FULL_FIT`` points) to ``points``."""
    if not points:
        raise CostModelError("calibration needs at least one measured reference model")
    raw = np.array([p.raw_ms for p in points])
    ops = np.array([p.ops for p in points], np.float64)
    measured = np.array([p.measured_ms for p in points])
    if len(points) < MIN_FULL_FIT:
        scale, per_op = float(np.median(measured / raw)), 0.0
    else:
        scale, per_op = _least_absolute_relative(np.column_stack([raw, ops]), measured)
    if scale <= 0:
        raise CostModelError("the calibration fit gave a non-positive scale; measure more reference models")
    return Calibration(
        scale=scale, per_op_ms=per_op, points=tuple(points), table_date=table_date, provenance=provenance or {}
    )


def _least_absolute_relative(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Non-negative coefficients minimizing sum |x @ c - y| / y, by iteratively reweighted least squares."""
    design = x / y[:, None]  # relative error: row i divided by y_i, target 1
    weights = np.ones(len(y))
    for _ in range(REWEIGHTS):
        root = np.sqrt(weights)
        coefficients, _ = nnls(design * root[:, None], root)
        weights = 1.0 / np.maximum(np.abs(design @ coefficients - 1.0), RESIDUAL_FLOOR)
    return float(coefficients[0]), float(coefficients[1])


def calibration_from_dict(raw: Any, source: str = "calibration") -> Calibration:
    """Validates a calibration's JSON form."""
    try:
        return Calibration(
            scale=float(raw["scale"]),
            per_op_ms=float(raw["per_op_ms"]),
            table_date=str(raw["table_date"]),
            provenance=dict(raw.get("provenance", {})),
            points=tuple(
                CalibrationPoint(
                    name=str(p["name"]),
                    raw_ms=float(p["raw_ms"]),
                    ops=int(p["ops"]),
                    measured_ms=float(p["measured_ms"]),
                )
                for p in raw["points"]
            ),
        )
    except (KeyError, TypeError, ValueError) as err:
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
