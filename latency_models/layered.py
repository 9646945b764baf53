"""Cost models that add up per-op figures: the shape every latency model here shares.

latency = invoke overhead + one figure per layer's op + one per precision boundary, then the device's
whole-model calibration when it has one (``latency_models.calibration``): every part scaled, plus a dispatch
term per op; then the correction learned from models measured whole, when one earns its place
(``latency_models.correction``): every part scaled by one factor per model. Energy = active power x latency;
flash comes from ``latency_models.memory``, RAM from the runtime that allocates the device's tensors
(``Runtime.ram_figure``: LiteRT's layout rules, TFLite Micro's arena for a microcontroller). A subclass says
only how one op, one boundary and one invoke cost, and what a calibration must have been fitted to.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import replace

from latency_models.calibration import Calibration, CalibrationPoint
from latency_models.correction import LearnedCorrection, WholeModel
from latency_models.cost import Cost, CostModel, Figure, LayerCost, total
from latency_models.device import DeviceProfile
from latency_models.errors import CostModelError
from latency_models.keys import Boundary, boundaries, layer_keys
from latency_models.memory import flash_figure, ram_figure
from latency_models.runtimes import memory_runtime
from latency_models.table import LayerKey
from search_spaces.graph import ModelGraph
from search_spaces.space import Candidate

FLOAT_REGION_GROUP = "float region"


def _as_float_region(part: LayerCost) -> LayerCost:
    return replace(
        part,
        latency_ms=replace(part.latency_ms, provenance="analytic"),
        note=f"float region, costed as a float dense layer of its MACs ({part.note})",
        group=FLOAT_REGION_GROUP,
    )


def arithmetic(key: LayerKey) -> str:
    """The arithmetic an op runs in: integer activations decide it."""
    return {8: "int8", 16: "int16x8"}.get(key.activation_bits, "float32")


def calibration_group(key: LayerKey) -> str:
    """The calibration group of a layer's op: its arithmetic."""
    return arithmetic(key)


def group_latencies(parts: Sequence[LayerCost]) -> dict[str, float]:
    """Raw latency (ms) per calibration group of a model's parts."""
    groups: dict[str, float] = {}
    for part in parts:
        groups[part.group] = groups.get(part.group, 0.0) + part.latency_ms.value
    return groups


def whole_model(raw: Sequence[LayerCost], *, flash: Figure, ram: Figure) -> WholeModel:
    """What the learned correction sees of a model: its uncalibrated parts per group and its memory figures."""
    counts: dict[str, int] = {}
    kinds: dict[str, float] = {}
    for part in raw:
        counts[part.group] = counts.get(part.group, 0) + 1
        if part.op:
            kinds[part.op] = kinds.get(part.op, 0.0) + part.latency_ms.value
    return WholeModel(
        groups=group_latencies(raw), counts=counts, kinds=kinds, ram_bytes=ram.value, flash_bytes=flash.value
    )


class LayeredCostModel(CostModel):
    """A device's costs as a sum of per-op parts, calibrated on whole models when a calibration is given."""

    def __init__(self, device: DeviceProfile, kernel_set: str, calibration: Calibration | None) -> None:
        if calibration is not None and calibration.basis != self.calibration_basis(device, kernel_set):
            raise CostModelError(
                f"the {device.name} ({kernel_set}) calibration was fitted to {calibration.basis}, not to "
                f"{self.calibration_basis(device, kernel_set)}; run `nas profile --device {device.name} --calibrate`"
            )
        self._device = device
        self._kernel_set = kernel_set
        runtime = memory_runtime(device)  # a microcontroller's RAM is TFLite Micro's arena, not LiteRT's layout
        self._ram_figure = ram_figure if runtime is None else runtime.ram_figure
        self.calibration = calibration
        self.correction: LearnedCorrection | None = None  # set by the registry where one was learned here

    @abc.abstractmethod
    def calibration_basis(self, device: DeviceProfile, kernel_set: str) -> str:
        """What a calibration of this model is fitted to (a table's date, an analytic model's constants)."""

    @abc.abstractmethod
    def op_latency(self, key: LayerKey) -> Figure:
        """The latency of one layer's op."""

    @abc.abstractmethod
    def boundary_latency(self, boundary: Boundary) -> Figure:
        """The latency of one precision boundary."""

    @abc.abstractmethod
    def invoke_latency(self) -> Figure:
        """The runtime's fixed cost per invoke."""

    @property
    def device(self) -> DeviceProfile:
        """The device this model describes."""
        return self._device

    @property
    def kernel_set(self) -> str:
        """The kernel set the figures are for."""
        return self._kernel_set

    def cost(self, graph: ModelGraph, candidate: Candidate) -> Cost:
        """Latency (per layer and term), energy, flash and RAM of ``candidate`` on this device."""
        return self.cost_of_parts(
            self.raw_parts(graph, candidate),
            flash=flash_figure(graph, candidate),
            ram=self._ram_figure(graph, candidate),
        )

    def cost_of_parts(self, raw: list[LayerCost], *, flash: Figure, ram: Figure) -> Cost:
        """The cost of a model given its uncalibrated latency parts and its memory figures."""
        parts = self._calibrated(raw) if self.calibration is not None else raw
        if self.correction is not None:
            parts = self._corrected(parts, whole_model(raw, flash=flash, ram=ram))
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
        """The uncalibrated latency parts: invoke overhead, every layer's op, every precision boundary.

        A float region is costed through its proxy key (``latency_models.keys.float_region_proxy``): a
        stand-in, not a measurement or fit of the region, so its part is analytic whatever the table holds.
        """
        named = [(layer.name, key) for layer, key in layer_keys(graph, candidate)]
        regions = {layer.name for layer in graph.float_regions}
        return [
            _as_float_region(part) if part.name in regions else part
            for part in self.parts_of_keys(named, boundaries(graph, candidate))
        ]

    def parts_of_keys(self, layers: Sequence[tuple[str, LayerKey]], edges: Sequence[Boundary]) -> list[LayerCost]:
        """Uncalibrated parts of named layer keys and precision boundaries (a candidate's, or a file's)."""
        parts = [LayerCost(name="invoke", latency_ms=self.invoke_latency(), note="interpreter overhead per invoke")]
        parts += [
            LayerCost(
                name=name, latency_ms=self.op_latency(key), note=key.describe(), group=calibration_group(key), op=key.op
            )
            for name, key in layers
        ]
        parts += [LayerCost(name=b.name, latency_ms=self.boundary_latency(b), note=b.kind) for b in edges]
        return parts

    def calibrated_ms(self, model: WholeModel) -> float:
        """The prediction the learned correction corrects: the calibrated sum of ``model``'s raw parts."""
        if self.calibration is None:
            return sum(model.groups.values())
        return self.calibration.corrected(model.groups, model.ops)

    def _corrected(self, parts: list[LayerCost], model: WholeModel) -> list[LayerCost]:
        """Every part scaled by the learned correction's factor for the model (fitted; extrapolated outside the
        range of predictions it learned from)."""
        correction = self.correction
        assert correction is not None
        factor, extrapolated = correction.factor(model, sum(p.latency_ms.value for p in parts))
        scaled = []
        for part in parts:
            figure = part.latency_ms.scaled(factor, "fitted")
            scaled.append(replace(part, latency_ms=replace(figure, extrapolated=figure.extrapolated or extrapolated)))
        return scaled

    def calibration_point(self, name: str, parts: list[LayerCost], measured_ms: float) -> CalibrationPoint:
        """A measured model as a calibration point of this model, from its uncalibrated ``parts``."""
        return CalibrationPoint(name=name, groups=group_latencies(parts), ops=len(parts) - 1, measured_ms=measured_ms)

    def _calibrated(self, parts: list[LayerCost]) -> list[LayerCost]:
        """Every part scaled by its group's calibrated scale (a fitted figure now), plus the per-op dispatch term."""
        calibration = self.calibration
        assert calibration is not None
        ops = len(parts) - 1  # every part but the invoke overhead is one op
        # Fitted to measurements of the device, whatever the prior was (a table, or specifications alone).
        scaled = [
            replace(
                part,
                latency_ms=replace(
                    part.latency_ms.scaled(calibration.scale_of(part.group)),
                    provenance="fitted" if part.group != FLOAT_REGION_GROUP else "analytic",
                ),
            )
            for part in parts
        ]
        dispatch = Figure(value=calibration.per_op_ms * ops, provenance="fitted")
        return [*scaled, LayerCost(name="dispatch", latency_ms=dispatch, note=calibration.describe())]
