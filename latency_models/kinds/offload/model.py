"""An accelerator beside a host CPU (the Coral Edge TPU): the graph runs on the accelerator up to the first op it
cannot run; that op and every op after it run on the host device, as the Edge TPU compiler maps a model.

latency = the accelerator's invoke + its ops and boundaries (its analytic model) + the tensors crossing the link
(the model's input in, and the accelerator's last output back) + the host's ops and boundaries (the host device's
own cost model, measured or analytic). A graph whose first op the accelerator cannot run runs wholly on the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from latency_models.calibration import Calibration
from latency_models.cost import Figure, LayerCost
from latency_models.device import DeviceProfile
from latency_models.errors import CostModelError
from latency_models.keys import Boundary
from latency_models.kinds.analytic.model import AnalyticLatency
from latency_models.kinds.analytic.spec import analytic_basis, spec_from_dict
from latency_models.kinds.offload.spec import offload_spec_from_dict
from latency_models.layered import LayeredCostModel
from latency_models.predictor import feature
from latency_models.table import LayerKey

WEIGHTED_OPS = ("conv", "dwconv", "dwconv_multiplier", "dense")


class OffloadCostModel(LayeredCostModel):
    """An accelerator (analytic) that hands everything from its first unsupported op on to ``host``."""

    def __init__(self, device: DeviceProfile, host: LayeredCostModel, calibration: Calibration | None = None) -> None:
        if device.analytic is None or device.offload is None:
            raise CostModelError(f"device {device.name!r} needs both 'analytic' and 'offload' sections")
        self.accelerator = AnalyticLatency(spec_from_dict(device.analytic, device.name), device.name)
        spec = offload_spec_from_dict(device.offload, device.name)
        self.accelerates = set(spec.accelerates)
        self.link = spec.link
        self.host = host
        super().__init__(device, device.default_kernel_set, calibration)

    def calibration_basis(self, device: DeviceProfile, kernel_set: str) -> str:
        """A digest of the accelerator's constants and the host model's own basis."""
        assert device.analytic is not None
        return f"{analytic_basis(device.analytic)} with {self.host.device.name} as host"

    def runs_on_accelerator(self, key: LayerKey) -> bool:
        """Whether the accelerator runs this op: its precision is one it accelerates (an op without weights, a
        pool or an add, needs only its activations to be)."""
        if key.op in WEIGHTED_OPS:
            return (key.weight_bits, key.activation_bits) in self.accelerates
        return any(key.activation_bits == bits for _, bits in self.accelerates)

    def split(self, layers: Sequence[tuple[str, LayerKey]]) -> int:
        """How many leading layers run on the accelerator (up to the first one it cannot run)."""
        for index, (_, key) in enumerate(layers):
            if not self.runs_on_accelerator(key):
                return index
        return len(layers)

    def parts_of_keys(self, layers: Sequence[tuple[str, LayerKey]], edges: Sequence[Boundary]) -> list[LayerCost]:
        """The accelerator's parts up to the split, the link transfers, then the host's parts."""
        split = self.split(layers)
        if split == 0:
            return self.host.parts_of_keys(layers, edges)
        position = {name: index for index, (name, _) in enumerate(layers)}
        on_accelerator = [e for e in edges if min(position.get(c, len(layers)) for c in e.consumers) < split]
        on_host = [e for e in edges if e not in on_accelerator]
        parts = [LayerCost(name="invoke", latency_ms=self.invoke_latency(), note="accelerator invoke (USB round trip)")]
        parts += [
            LayerCost(name=name, latency_ms=self.op_latency(key), note=f"{key.describe()} [accelerator]", group="int8")
            for name, key in layers[:split]
        ]
        parts += [
            LayerCost(name=e.name, latency_ms=self.boundary_latency(e), note=f"{e.kind} [accelerator]")
            for e in on_accelerator
        ]
        crossing = feature(layers[0][1], "input_bytes") + feature(layers[split - 1][1], "output_bytes")
        transfer = Figure(value=crossing / self.link.value * 1000, provenance="analytic")
        parts.append(LayerCost(name="transfer", latency_ms=transfer, note=f"{crossing:.0f} bytes over the link"))
        if split < len(layers):
            host_parts = self.host.parts_of_keys(layers[split:], on_host)[1:]  # the host's invoke is already paid
            parts += [replace(p, note=f"{p.note} [host]", group=f"host {p.group}") for p in host_parts]
        return parts

    def op_latency(self, key: LayerKey) -> Figure:
        """An op on the accelerator."""
        return self.accelerator.op(key)

    def boundary_latency(self, boundary: Boundary) -> Figure:
        """A conversion on the accelerator."""
        return self.accelerator.boundary(boundary)

    def invoke_latency(self) -> Figure:
        """The accelerator's fixed cost per invoke."""
        return self.accelerator.invoke()
