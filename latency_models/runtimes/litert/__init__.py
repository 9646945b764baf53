"""LiteRT (``ai-edge-litert``), the runtime of the host and of every phone- or board-class device profile.

Its parts live in the modules of this package, which this class puts behind the ``Runtime`` interface: the
interpreter with its two kernel sets (``interpreter``: the XNNPACK delegate by default, or the builtin kernels
only), the timing protocol of the cost tables (``timing``, whose statistics the on-device kit shares), the memory
plan read from the interpreter's allocated tensors (``memory_plan``) and its support table
(``search_spaces.runtime_support``: measured with LiteRT 2.3.0).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from latency_models.host import runtime_version
from latency_models.runtimes.base import Capability, Runtime
from latency_models.runtimes.litert.interpreter import DELEGATES, load_interpreter, predict_tflite
from latency_models.runtimes.litert.memory_plan import TensorMemory, tensor_memory
from latency_models.runtimes.litert.timing import TimingProtocol, time_invokes
from latency_models.table import Measurement
from search_spaces.runtime_support import SUPPORT, Support

UNLISTED = Support(runs=False, form="none", note="not in the LiteRT support table")


class LiteRT(Runtime):
    """The LiteRT interpreter: runs, times and plans memory for ``.tflite`` files here."""

    name: ClassVar[str] = "litert"
    kernel_sets: ClassVar[tuple[str, ...]] = tuple(DELEGATES)
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"run", "time", "memory"})

    def version(self) -> str:
        """``ai-edge-litert <version>``."""
        return runtime_version()

    def support(self, op: str, weight_bits: int, activation_bits: int) -> Support:
        """The support table's entry (an op or precision outside the table does not run)."""
        return SUPPORT.get((op, weight_bits, activation_bits), UNLISTED)

    def predict(self, content: bytes, x: np.ndarray, *, kernel_set: str, threads: int = 1) -> np.ndarray:
        """Top-1 predictions, one example per invoke (raises ``ModelLoadError`` when the file does not load)."""
        return predict_tflite(load_interpreter(content, delegate=kernel_set, threads=threads), x)

    def timing_protocol(self, threads: int = 1) -> TimingProtocol:
        """The cost tables' protocol (warm-up, then rounds of invokes timed whole, outlier rounds rejected)."""
        return TimingProtocol(threads=threads)

    def time(self, content: bytes, *, kernel_set: str, protocol: TimingProtocol) -> Measurement:
        """Per-invoke latency in ms (median and quartiles of the kept rounds)."""
        return time_invokes(content, delegate=kernel_set, protocol=protocol)

    def memory_plan(self, content: bytes) -> TensorMemory:
        """The tensor memory the interpreter allocates (builtin kernels; XNNPACK's workspace is private)."""
        return tensor_memory(content)
