"""Fitted latency for shapes that were not measured: one monotone linear model per (op, precision) of a table.

Features in the style of nn-Meter (Zhang et al., MobiSys 2021): multiply-accumulates, input, output and
weight bytes, plus the sizes kernels tile over (output pixels and elements, the im2col buffer of a convolution,
input elements, channel counts), the MACs with channels padded up to 16-wide SIMD tiles (a pruned layer of 28
channels costs about what 32 would) and a constant. Coefficients are fitted by non-negative least squares, so a
prediction never falls when the work grows (more MACs, more bytes) and never goes below the op's fixed cost.
Each prediction says whether its features lie inside the range the fit saw (interpolated) or beyond it
(extrapolated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from latency_models.cost import Provenance
from latency_models.errors import CostModelError
from latency_models.table import LatencyTable, LayerKey

FEATURES = (
    "constant",
    "macs",
    "input_bytes",
    "output_bytes",
    "weight_bytes",
    "output_pixels",
    "output_elements",
    "im2col_elements",
    "input_elements",
    "out_channels",
    "in_channels",
    "padded_macs",
)
TILE = 16  # channels pad up to SIMD tiles: 28 channels cost about what 32 do
MIN_POINTS = 3
WEIGHT_FLOOR_MS = 1e-3  # about the interpreter's invoke overhead on the host (0.5 us)


def output_size(key: LayerKey) -> tuple[int, int]:
    """Spatial output size of a key's op (SAME padding, as the model families use)."""
    if key.op in ("avg_pool", "max_pool"):
        return -(-key.height // key.kernel), -(-key.width // key.kernel)
    if key.op in ("conv", "dwconv", "dwconv_multiplier"):
        return -(-key.height // key.stride), -(-key.width // key.stride)
    if key.op in ("global_avg_pool", "dense"):
        return 1, 1
    return key.height, key.width


def macs(key: LayerKey) -> int:
    """Multiply-accumulates of one inference of the op (additions for adds and pools)."""
    oh, ow = output_size(key)
    if key.op == "conv":
        return oh * ow * key.kernel * key.kernel * key.in_channels * key.out_channels
    if key.op in ("dwconv", "dwconv_multiplier"):  # one input channel per output channel
        return oh * ow * key.kernel * key.kernel * key.out_channels
    if key.op == "dense":
        return key.in_channels * key.out_channels
    if key.op in ("avg_pool", "max_pool"):
        return oh * ow * key.kernel * key.kernel * key.in_channels
    return key.height * key.width * key.in_channels


def features(key: LayerKey) -> np.ndarray:
    """The feature vector of ``key`` (order: ``FEATURES``)."""
    activation = 4 if key.activation_bits == 32 else key.activation_bits // 8
    oh, ow = output_size(key)
    inputs = key.height * key.width * key.in_channels * (2 if key.op == "add" else 1)
    outputs = oh * ow * key.out_channels
    depthwise = key.kernel**2 * key.out_channels
    weights = {
        "conv": key.kernel**2 * key.in_channels * key.out_channels,
        "dwconv": depthwise,
        "dwconv_multiplier": depthwise,
    }
    weight_count = weights.get(key.op, key.in_channels * key.out_channels if key.op == "dense" else 0)
    im2col = oh * ow * key.kernel**2 * key.in_channels if key.op == "conv" else 0
    return np.array(
        [
            1.0,
            macs(key),
            inputs * activation,
            outputs * activation,
            weight_count * key.weight_bits / 8,
            oh * ow,
            outputs,
            im2col,
            inputs,
            key.out_channels,
            key.in_channels,
            macs(key) * _padding(key.out_channels) * (_padding(key.in_channels) if key.op in ("conv", "dense") else 1),
        ],
        np.float64,
    )


def feature(key: LayerKey, name: str) -> float:
    """One named feature of ``key`` (a name of ``FEATURES``)."""
    return float(features(key)[FEATURES.index(name)])


def _padding(channels: int) -> float:
    """How much larger ``channels`` is once rounded up to a whole tile."""
    return -(-channels // TILE) * TILE / channels


def group_of(key: LayerKey) -> tuple[str, int, int]:
    """The keys that share one fitted model: same op and precision (fused activations cost next to nothing)."""
    return (key.op, key.weight_bits, key.activation_bits)


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """A fitted latency and whether it extrapolated beyond the fit's data."""

    latency_ms: float
    extrapolated: bool


@dataclass(frozen=True, kw_only=True)
class LinearFit:
    """Non-negative coefficients per feature, scaled; and the range of each feature in the fit's data."""

    coefficients: np.ndarray
    scale: np.ndarray
    low: np.ndarray
    high: np.ndarray
    points: int

    def predict(self, key: LayerKey) -> Prediction:
        """The fitted latency of ``key``."""
        x = features(key)
        outside = bool(np.any(x[1:] < self.low[1:] * (1 - 1e-9)) or np.any(x[1:] > self.high[1:] * (1 + 1e-9)))
        return Prediction(latency_ms=float((x / self.scale) @ self.coefficients), extrapolated=outside)


def fit_group(keys: list[LayerKey], latencies_ms: list[float]) -> LinearFit:
    """Fits one group by non-negative least squares on relative error (each point weighted by 1/latency)."""
    x = np.stack([features(key) for key in keys])
    y = np.asarray(latencies_ms, np.float64)
    scale = np.maximum(x.max(axis=0), 1e-12)
    # Relative error matters (a 10% miss on a 5 us op is as bad as on a 500 us one), so rows are weighted by
    # 1/y; but an op whose net latency is within the invoke overhead's noise (near 0) must not dominate the
    # fit, so the weight is floored at the scale of that overhead.
    weight = 1.0 / (y + WEIGHT_FLOOR_MS)
    coefficients, _ = nnls((x / scale) * weight[:, None], y * weight)
    return LinearFit(coefficients=coefficients, scale=scale, low=x.min(axis=0), high=x.max(axis=0), points=len(keys))


class FittedTable:
    """A latency table plus one fit per (op, precision): exact hits where measured, fits elsewhere."""

    def __init__(self, table: LatencyTable) -> None:
        self.table = table
        groups: dict[tuple[str, int, int], list[LayerKey]] = {}
        for key in table.entries:
            groups.setdefault(group_of(key), []).append(key)
        self.fits = {
            group: fit_group(keys, [table.entries[k].median_ms for k in keys])
            for group, keys in groups.items()
            if len(keys) >= MIN_POINTS
        }

    def latency(self, key: LayerKey) -> tuple[float, Provenance, bool]:
        """(latency in ms, provenance, extrapolated) of ``key``: measured when in the table, else fitted."""
        measured = self.table.get(key)
        if measured is not None:
            return measured.median_ms, "measured", False
        fit = self.fits.get(group_of(key))
        if fit is None:
            raise CostModelError(self.table._missing(key) + " (and too few entries of its kind to fit one)")
        prediction = fit.predict(key)
        return max(prediction.latency_ms, 0.0), "fitted", prediction.extrapolated


def interpolate_term(points: dict[int, float], size: int) -> tuple[float, bool]:
    """A whole-model term measured at a few tensor sizes, linearly interpolated in ``size`` (extrapolated beyond
    the measured sizes along the end segments, never below zero); returns (value, extrapolated)."""
    if not points:
        raise CostModelError("no measurements of this whole-model term; profile the device again")
    sizes = sorted(points)
    if len(sizes) == 1:
        return points[sizes[0]], size != sizes[0]
    if size <= sizes[0]:
        a, b = sizes[0], sizes[1]
    elif size >= sizes[-1]:
        a, b = sizes[-2], sizes[-1]
    else:
        index = next(i for i, s in enumerate(sizes) if s >= size)
        a, b = sizes[index - 1], sizes[index]
    slope = (points[b] - points[a]) / (b - a)
    value = points[a] + slope * (size - a)
    return max(value, 0.0), not sizes[0] <= size <= sizes[-1] or math.isnan(value)
