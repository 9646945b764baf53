"""Analytic cost models: latency from a device's specifications alone, for devices nobody has measured yet.

Per op, a roofline with a fixed cost:

    latency = overhead + max(MACs / (MACs per cycle x clock), bytes moved / bandwidth)

MACs per cycle is the device's sustained rate for the op's compute precision (float32, int8, int16x8, or the
float rate of a weight-only layer, whose weights the runtime turns into float), taken from the core's SIMD width
and the kernel library's inner loops; bytes moved are the op's input, output and weights, the weights from where
they are stored (flash on a microcontroller). Precision boundaries cost cycles per element; an invoke costs a
fixed number of cycles. Every constant lives in the profile with its source; no constant is fitted to published
model latencies (those are the validation set). Every figure is labelled ``analytic`` and the profile states the
error to expect. A few models measured on the device calibrate it (``latency_models.calibration``).
"""

from __future__ import annotations

from latency_models.calibration import Calibration
from latency_models.cost import Figure
from latency_models.device import DeviceProfile
from latency_models.errors import CostModelError
from latency_models.keys import Boundary
from latency_models.kinds.analytic.spec import AnalyticSpec, analytic_basis, spec_from_dict
from latency_models.layered import LayeredCostModel, arithmetic
from latency_models.predictor import feature, macs
from latency_models.table import LayerKey


class AnalyticLatency:
    """Per-op, per-boundary and per-invoke latency from an ``AnalyticSpec``."""

    def __init__(self, spec: AnalyticSpec, device: str) -> None:
        self.spec = spec
        self.device = device
        self.clock = float(spec.clock_hz.value)

    def op(self, key: LayerKey) -> Figure:
        """The analytic latency (ms) of one op."""
        precision = arithmetic(key)  # a float op with integer weights runs in float once they are dequantized
        rate = self.spec.macs_per_cycle.value.get(precision)
        if rate is None:
            raise CostModelError(f"device {self.device!r} has no {precision} compute rate for {key.describe()}")
        activation_bytes = feature(key, "input_bytes") + feature(key, "output_bytes")
        weight_bytes = feature(key, "weight_bytes")
        compute_s = macs(key) / (float(rate) * self.clock)
        memory_s = activation_bytes / float(self.spec.activation_bandwidth.value) + weight_bytes / float(
            self.spec.weight_bandwidth.value
        )
        seconds = float(self.spec.op_overhead_cycles.value) / self.clock + max(compute_s, memory_s)
        return Figure(value=seconds * 1000, provenance="analytic")

    def boundary(self, boundary: Boundary) -> Figure:
        """QUANTIZE / DEQUANTIZE / requantize of one tensor."""
        cycles = float(self.spec.op_overhead_cycles.value) + boundary.elements * float(
            self.spec.convert_cycles_per_element.value
        )
        return Figure(value=cycles / self.clock * 1000, provenance="analytic")

    def invoke(self) -> Figure:
        """The runtime's fixed cost per invoke."""
        return Figure(value=float(self.spec.invoke_overhead_cycles.value) / self.clock * 1000, provenance="analytic")


class AnalyticCostModel(LayeredCostModel):
    """A device costed from its specifications (every latency ``analytic``, or ``fitted`` once calibrated)."""

    def __init__(self, device: DeviceProfile, calibration: Calibration | None = None) -> None:
        if device.analytic is None:
            raise CostModelError(f"device {device.name!r} has no analytic model in its profile")
        self.latency = AnalyticLatency(spec_from_dict(device.analytic, device.name), device.name)
        super().__init__(device, device.default_kernel_set, calibration)

    def calibration_basis(self, device: DeviceProfile, kernel_set: str) -> str:
        """A digest of the profile's analytic constants."""
        assert device.analytic is not None
        return analytic_basis(device.analytic)

    def op_latency(self, key: LayerKey) -> Figure:
        """The op's roofline latency."""
        return self.latency.op(key)

    def boundary_latency(self, boundary: Boundary) -> Figure:
        """Conversion cycles per element."""
        return self.latency.boundary(boundary)

    def invoke_latency(self) -> Figure:
        """The runtime's fixed cycles per invoke."""
        return self.latency.invoke()
