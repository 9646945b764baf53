"""What a runtime is to this project: the program that runs an exported model file on this machine.

A runtime (LiteRT, TFLite Micro, the Vela compiler) offers some of five things, each a method here, and says
which in ``capabilities``:

- ``run``: load a file with one of its kernel sets and predict a batch (``predict``), as the parity check and the
  export's verification do;
- ``time``: measure a file's latency by its one timing protocol (``timing_protocol`` and ``time``), the
  protocol the cost tables were measured with, so a measured figure and a table's figure compare;
- ``memory``: read the memory plan it makes for a file (``memory_plan``: the tensor arena);
- ``estimate``: compile a file for a device's accelerator and read the compiler's own performance estimate
  (``estimate``: cycles, time, memory and where each op runs), for a device no runtime here can time;
- always: its support table (``support``), which (op, weight bits, activation bits) it runs correctly.

A method outside the runtime's capabilities raises ``RuntimeCapabilityError`` saying what it cannot do (a
microcontroller interpreter's reference kernels must never be timed, say). Measuring here says nothing about
another device: whether a device can be measured here is the device's ``measurable_here``, not the runtime's.
A new runtime is one module in ``latency_models/runtimes/`` (its ``Runtime`` subclass) and its entry in
``RUNTIMES``; exporting to its file format stays in ``nas.runtime``.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar, Literal

from latency_models.errors import CostModelError
from search_spaces.runtime_support import Support

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

    from latency_models.cost import Cost, Figure, LayerCost
    from latency_models.device import DeviceProfile
    from latency_models.keys import Boundary
    from latency_models.runtimes.litert.memory_plan import TensorMemory
    from latency_models.runtimes.litert.timing import TimingProtocol
    from latency_models.runtimes.vela.report import VelaEstimate
    from latency_models.table import Measurement
    from search_spaces.graph import ModelGraph
    from search_spaces.space import Candidate

Capability = Literal["run", "time", "memory", "estimate"]
CAPABILITIES: tuple[Capability, ...] = ("run", "time", "memory", "estimate")


class RuntimeCapabilityError(CostModelError):
    """A runtime was asked for something it does not do (see ``Runtime.capabilities``)."""


class Runtime(abc.ABC):
    """A runtime of exported model files (see the module docstring)."""

    name: ClassVar[str]
    # The kernel sets it can run a file with here, the default first; a device runs on the runtime whose kernel
    # sets include all of the device's.
    kernel_sets: ClassVar[tuple[str, ...]]
    capabilities: ClassVar[frozenset[Capability]]
    # Kernel sets of devices whose files it runs here with other kernels meant to compute the same (TFLite Micro's
    # reference kernels for CMSIS-NN and ESP-NN): it checks their parity and memory, never their latency.
    stands_in_for: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def version(self) -> str:
        """The runtime package and its version, as recorded in a table's provenance."""

    @abc.abstractmethod
    def support(self, op: str, weight_bits: int, activation_bits: int) -> Support:
        """Whether (and in which form) it runs ``op`` at this precision correctly."""

    def runs_correctly(self, op: str, weight_bits: int, activation_bits: int) -> bool:
        """True when ``op`` runs at this precision and gives correct results."""
        return self.support(op, weight_bits, activation_bits).runs

    def predict(self, content: bytes, x: np.ndarray, *, kernel_set: str, threads: int = 1) -> np.ndarray:
        """Top-1 predictions of the model file ``content`` for the examples ``x``."""
        raise self.unable("run a model file")

    def timing_protocol(self, threads: int = 1) -> TimingProtocol:
        """Its one timing protocol, at ``threads`` threads."""
        raise self.unable("time a model file")

    def time(self, content: bytes, *, kernel_set: str, protocol: TimingProtocol) -> Measurement:
        """Per-invoke latency of ``content`` on this machine, measured by ``protocol``."""
        raise self.unable("time a model file")

    def memory_plan(self, content: bytes) -> TensorMemory:
        """The tensor memory it plans for ``content``."""
        raise self.unable("report a memory plan")

    def ram_figure(self, graph: ModelGraph, candidate: Candidate) -> Figure:
        """The RAM ``candidate``'s export needs under this runtime, predicted before training: LiteRT's tensor
        layout rules unless the runtime allocates otherwise (``latency_models.memory``)."""
        from latency_models.memory import ram_figure  # it imports this package (its interval union)

        return ram_figure(graph, candidate)

    def estimate(self, content: bytes, device: DeviceProfile) -> VelaEstimate:
        """The compiler's estimate of ``content`` on ``device``'s accelerator (never a measurement)."""
        raise self.unable("estimate a model file's performance")

    def cpu_conversions(self, edges: Sequence[Boundary]) -> list[Boundary]:
        """Which of a model's precision conversions the system's CPU does, outside ``file_cost``'s own figures
        (the ``cpu_side`` a caller costs with the device's profile): all of them, unless the runtime says."""
        return list(edges)

    def cpu_layers(self, content: bytes, device: DeviceProfile) -> tuple[str, ...]:
        """The layers of ``content`` whose operators ``file_cost``'s estimate leaves to the system's CPU, other
        than the conversions (``cpu_conversions``): the caller costs them with the device's profile, in
        ``cpu_side``. None unless the runtime says."""
        del content, device
        return ()

    def file_cost(self, content: bytes, device: DeviceProfile, *, cpu_side: Sequence[LayerCost] = ()) -> Cost:
        """What the file ``content`` costs on ``device`` by this runtime's own means (its ``estimate``), with
        ``cpu_side`` the analytic terms of the work its estimate leaves out (the interpreter, the conversions)."""
        raise self.unable("cost a model file")

    def can(self, capability: Capability) -> bool:
        """Whether it offers ``capability`` (``run``, ``time``, ``memory`` or ``estimate``)."""
        return capability in self.capabilities

    def unable(self, what: str) -> RuntimeCapabilityError:
        """The error for a capability it lacks."""
        offered = ", ".join(sorted(self.capabilities)) or "nothing but its support table"
        return RuntimeCapabilityError(f"the {self.name} runtime cannot {what} (it offers: {offered})")
