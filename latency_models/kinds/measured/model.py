"""The cost model of a device with measured latency tables (the host; any device whose kit results came back).

An op's latency is a table hit where that exact shape and precision was measured, the group's monotone fit
elsewhere; the precision boundaries (QUANTIZE, DEQUANTIZE, int8 <-> int16 requantize) were measured at several
tensor sizes and are interpolated; the invoke overhead is measured. Fused kernels are one op (a conv with its
activation and folded BatchNorm is one key). A calibration must have been fitted to this very table (its date).
"""

from __future__ import annotations

from latency_models.calibration import Calibration
from latency_models.cost import Figure
from latency_models.device import DeviceProfile
from latency_models.errors import CostModelError
from latency_models.keys import Boundary
from latency_models.layered import LayeredCostModel
from latency_models.predictor import FittedTable, interpolate_term
from latency_models.table import LatencyTable, LayerKey


class MeasuredCostModel(LayeredCostModel):
    """Costs from one measured table of a device (one kernel set)."""

    def __init__(self, device: DeviceProfile, table: LatencyTable, calibration: Calibration | None = None) -> None:
        if table.device != device.name:
            raise CostModelError(f"the latency table is for {table.device!r}, not {device.name!r}")
        self.table = table
        self.fitted = FittedTable(table)
        self.terms = _terms(table)
        super().__init__(device, table.kernel_set, calibration)

    def calibration_basis(self, device: DeviceProfile, kernel_set: str) -> str:
        """The table's measurement date."""
        return f"the table of {self.table.provenance.get('date_utc', '?')}"

    def op_latency(self, key: LayerKey) -> Figure:
        """A table hit (measured) or the group's fit (fitted, maybe extrapolated)."""
        value, provenance, extrapolated = self.fitted.latency(key)
        return Figure(value=value, provenance=provenance, extrapolated=extrapolated)

    def invoke_latency(self) -> Figure:
        """The measured invoke overhead."""
        return Figure(value=self.table.lookup(LayerKey(op="invoke")).median_ms, provenance="measured")

    def boundary_latency(self, boundary: Boundary) -> Figure:
        """The boundary's term, interpolated in the tensor size."""
        points = self.terms.get((boundary.kind, boundary.from_bits, boundary.to_bits))
        if points is None:
            raise CostModelError(
                f"the {self.device.name} ({self.kernel_set}) table has no {boundary.kind} term from "
                f"{boundary.from_bits} to {boundary.to_bits} bits; profile the device again"
            )
        value, extrapolated = interpolate_term(points, boundary.elements)
        return Figure(value=value, provenance="fitted", extrapolated=extrapolated)


def _terms(table: LatencyTable) -> dict[tuple[str, int, int], dict[int, float]]:
    """The whole-model terms of a table, by (term, from bits, to bits) and tensor size.

    Rows: ``quantize`` (float -> ``activation_bits``), ``dequantize`` (``weight_bits`` -> float) and
    ``requantize`` (``weight_bits`` -> ``activation_bits``); the tensor size is in ``in_channels``.
    """
    terms: dict[tuple[str, int, int], dict[int, float]] = {}
    for key, measurement in table.entries.items():
        direction = {
            "quantize": (32, key.activation_bits),
            "dequantize": (key.weight_bits, 32),
            "requantize": (key.weight_bits, key.activation_bits),
        }.get(key.op)
        if direction is not None:
            terms.setdefault((key.op, *direction), {})[key.in_channels] = measurement.median_ms
    return terms
