"""The cost model of a device with measured latency tables (the host; any device whose kit results came back).

latency = invoke overhead + the net latency of every layer's op (a table hit where that exact shape and
precision was measured, the group's monotone fit elsewhere) + the precision boundaries (QUANTIZE, DEQUANTIZE,
int8 <-> int16 requantize, each measured at several tensor sizes and interpolated). Fused kernels are one op
(a conv with its activation and folded BatchNorm is one key). Energy = active power x latency (analytic unless
a power counter measured it); flash and RAM come from ``latency_models.memory``.
"""

from __future__ import annotations

from latency_models.cost import Cost, CostModel, Figure, LayerCost, total
from latency_models.device import DeviceProfile
from latency_models.errors import CostModelError
from latency_models.keys import Boundary, boundaries, layer_keys
from latency_models.memory import flash_figure, ram_figure
from latency_models.predictor import FittedTable, interpolate_term
from latency_models.table import LatencyTable, LayerKey
from search_spaces.graph import ModelGraph
from search_spaces.space import Candidate


class MeasuredCostModel(CostModel):
    """Costs from one measured table of a device (one kernel set)."""

    def __init__(self, device: DeviceProfile, table: LatencyTable) -> None:
        if table.device != device.name:
            raise CostModelError(f"the latency table is for {table.device!r}, not {device.name!r}")
        self._device = device
        self.table = table
        self.fitted = FittedTable(table)
        self.terms = _terms(table)

    @property
    def device(self) -> DeviceProfile:
        """The device this model describes."""
        return self._device

    @property
    def kernel_set(self) -> str:
        """The kernel set the table was measured with."""
        return self.table.kernel_set

    def cost(self, graph: ModelGraph, candidate: Candidate) -> Cost:
        """Latency (per layer and term), energy, flash and RAM of ``candidate`` on this device."""
        parts = [LayerCost(name="invoke", latency_ms=self._invoke(), note="interpreter overhead per invoke")]
        for layer, key in layer_keys(graph, candidate):
            value, provenance, extrapolated = self.fitted.latency(key)
            figure = Figure(value=value, provenance=provenance, extrapolated=extrapolated)
            parts.append(LayerCost(name=layer.name, latency_ms=figure, note=key.describe()))
        for boundary in boundaries(graph, candidate):
            parts.append(LayerCost(name=boundary.name, latency_ms=self._boundary(boundary), note=boundary.kind))
        latency = total(part.latency_ms for part in parts)
        power = self.device.active_power
        return Cost(
            device=self.device.name,
            latency_ms=latency,
            energy_mj=latency.scaled(power.watts, "analytic"),  # W x ms = mJ
            flash_bytes=flash_figure(graph, candidate),
            ram_bytes=ram_figure(graph, candidate),
            layers=tuple(parts),
        )

    def _invoke(self) -> Figure:
        measured = self.table.lookup(LayerKey(op="invoke"))
        return Figure(value=measured.median_ms, provenance="measured")

    def _boundary(self, boundary: Boundary) -> Figure:
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
