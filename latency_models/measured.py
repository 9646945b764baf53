"""The cost model of a device with measured latency tables (the host; any device whose kit results came back).

latency = invoke overhead + the net latency of every layer's op (a table hit where that exact shape and
precision was measured, the group's monotone fit elsewhere) + the precision boundaries (QUANTIZE, DEQUANTIZE,
int8 <-> int16 requantize, each measured at several tensor sizes and interpolated). Fused kernels are one op
(a conv with its activation and folded BatchNorm is one key). When the table has a whole-model calibration
(``latency_models.calibration``: reference models timed whole on the device), every part is scaled by it and a
dispatch term per op is added. Energy = active power x latency (analytic unless a power counter measured it);
flash and RAM come from ``latency_models.memory``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from latency_models.calibration import Calibration
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

    def __init__(self, device: DeviceProfile, table: LatencyTable, calibration: Calibration | None = None) -> None:
        if table.device != device.name:
            raise CostModelError(f"the latency table is for {table.device!r}, not {device.name!r}")
        table_date = str(table.provenance.get("date_utc", ""))
        if calibration is not None and calibration.table_date != table_date:
            raise CostModelError(
                f"the {device.name} ({table.kernel_set}) calibration was fitted to the table of "
                f"{calibration.table_date}, not this one ({table_date}); run `nas profile --device {device.name} "
                "--calibrate`"
            )
        self._device = device
        self.table = table
        self.calibration = calibration
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
        return self.cost_of_parts(
            self.raw_parts(graph, candidate), flash=flash_figure(graph, candidate), ram=ram_figure(graph, candidate)
        )

    def cost_of_parts(self, raw: list[LayerCost], *, flash: Figure, ram: Figure) -> Cost:
        """The cost of a model given its uncalibrated latency parts and its memory figures."""
        parts = self._calibrated(raw) if self.calibration is not None else raw
        latency = total(part.latency_ms for part in parts)
        power = self.device.active_power
        return Cost(
            device=self.device.name,
            latency_ms=latency,
            energy_mj=latency.scaled(power.watts, "analytic"),  # W x ms = mJ
            flash_bytes=flash,
            ram_bytes=ram,
            layers=tuple(parts),
        )

    def raw_parts(self, graph: ModelGraph, candidate: Candidate) -> list[LayerCost]:
        """The uncalibrated latency parts: invoke overhead, every layer's op, every precision boundary."""
        named = [(layer.name, key) for layer, key in layer_keys(graph, candidate)]
        return self.parts_of_keys(named, boundaries(graph, candidate))

    def parts_of_keys(self, layers: Sequence[tuple[str, LayerKey]], edges: Sequence[Boundary]) -> list[LayerCost]:
        """Uncalibrated parts of named layer keys and precision boundaries (a candidate's, or a file's)."""
        parts = [LayerCost(name="invoke", latency_ms=self._invoke(), note="interpreter overhead per invoke")]
        for name, key in layers:
            value, provenance, extrapolated = self.fitted.latency(key)
            figure = Figure(value=value, provenance=provenance, extrapolated=extrapolated)
            parts.append(LayerCost(name=name, latency_ms=figure, note=key.describe()))
        for boundary in edges:
            parts.append(LayerCost(name=boundary.name, latency_ms=self._boundary(boundary), note=boundary.kind))
        return parts

    def _calibrated(self, parts: list[LayerCost]) -> list[LayerCost]:
        """Every part scaled by the calibration (a fitted figure now), plus the per-op dispatch term."""
        assert self.calibration is not None
        scale, ops = self.calibration.scale, len(parts) - 1  # every part but the invoke overhead is one op
        scaled = [replace(part, latency_ms=part.latency_ms.scaled(scale, "fitted")) for part in parts]
        dispatch = Figure(value=self.calibration.per_op_ms * ops, provenance="fitted")
        note = f"calibration: x{scale:.3f}, {self.calibration.per_op_ms * 1000:.3f} us dispatch per op"
        return [*scaled, LayerCost(name="dispatch", latency_ms=dispatch, note=note)]

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
