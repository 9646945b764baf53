"""Vela (``ethos-u-vela``), Arm's compiler for the Ethos-U NPUs: the runtime of the Ethos-U device profiles.

Nothing here runs a model on an NPU: Vela compiles a ``.tflite`` for one NPU configuration (``config``), places
each operator on the NPU or leaves it to the CPU, and estimates the NPU's cycles, time and memory from its model
of the accelerator and the system's memories (``report``). That estimate is its one capability (``estimate``);
it is labelled as Vela's and never as a measurement. Each compile runs in a process of its own (``compiler``)
and the latest are kept per file content and configuration, so asking again costs nothing. Which precisions
the NPU runs is its support table (``support``), checked against Vela itself.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import ClassVar

from latency_models.cost import Cost, LayerCost
from latency_models.device import DeviceProfile
from latency_models.keys import Boundary
from latency_models.runtimes.base import Capability, Runtime
from latency_models.runtimes.vela.compiler import compile_model, vela_version
from latency_models.runtimes.vela.config import VelaConfig, vela_config
from latency_models.runtimes.vela.cost import CONVERSION_OPERATORS, on_the_cpu, vela_cost
from latency_models.runtimes.vela.report import VelaEstimate
from latency_models.runtimes.vela.support import refuse_unreadable, vela_support
from latency_models.tflite_keys import tensor_layers
from search_spaces.runtime_support import Support

KEPT_ESTIMATES = 64  # recent compiles kept in memory (each holds its compiled file)


class Vela(Runtime):
    """The Vela compiler: estimates what a ``.tflite`` costs on an Ethos-U NPU (capability: estimate)."""

    name: ClassVar[str] = "vela"
    kernel_sets: ClassVar[tuple[str, ...]] = ("ethos_u55", "ethos_u65")
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"estimate"})

    def __init__(self) -> None:
        # The latest estimates, oldest first: a trial asks twice (its cost, then its export), a long search must
        # not keep every compiled file in memory.
        self._estimates: OrderedDict[tuple[str, VelaConfig], VelaEstimate] = OrderedDict()

    def version(self) -> str:
        """``ethos-u-vela <version>``."""
        return f"ethos-u-vela {vela_version()}"

    def support(self, op: str, weight_bits: int, activation_bits: int) -> Support:
        """Where the layer runs on an Ethos-U system: form ``npu`` (int8 weights, int8 or int16 activations),
        ``cpu`` (what Vela leaves to TFLite Micro), or nowhere (``runs`` False, with the reason)."""
        return vela_support(op, weight_bits, activation_bits)

    def estimate(self, content: bytes, device: DeviceProfile) -> VelaEstimate:
        """Vela's estimate of ``content`` on ``device``'s NPU (its ``vela`` section), compiled once per file
        content and configuration; a file Vela cannot compile raises ``CostModelError`` in one line."""
        config = vela_config(device)
        key = (hashlib.sha256(bytes(content)).hexdigest(), config)
        if key not in self._estimates:
            refuse_unreadable(content)
            self._estimates[key] = compile_model(content, config)
            while len(self._estimates) > KEPT_ESTIMATES:
                self._estimates.popitem(last=False)
        return self._estimates[key]

    def cpu_conversions(self, edges: Sequence[Boundary]) -> list[Boundary]:
        """The conversions to and from float: the NPU runs the others itself (``vela.cost.on_the_cpu``)."""
        return on_the_cpu(edges)

    def cpu_layers(self, content: bytes, device: DeviceProfile) -> tuple[str, ...]:
        """The layers with an operator Vela leaves to the CPU, other than the float conversions (a float layer,
        a float region's operators), once each, in the file's order."""
        names = tensor_layers(content)
        left = self.estimate(content, device).cpu_layers
        return tuple(
            dict.fromkeys(names.get(op.tensor, op.tensor) for op in left if op.operator not in CONVERSION_OPERATORS)
        )

    def file_cost(self, content: bytes, device: DeviceProfile, *, cpu_side: Sequence[LayerCost] = ()) -> Cost:
        """The file's cost on ``device`` from Vela's estimate (``vela.cost``), its CPU side analytic."""
        report = self.estimate(content, device)
        return vela_cost(device, report, names=tensor_layers(content), cpu_side=cpu_side)
