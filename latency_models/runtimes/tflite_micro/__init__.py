"""TFLite Micro (``tflite-micro``), the runtime of the microcontroller device profiles, run here for what does
not depend on the processor: whether a file prepares at all (every op and precision has a kernel), what it
computes, and the tensor arena it needs.

Its x86 build runs TFLite Micro's reference kernels, not the CMSIS-NN or ESP-NN kernels a device links, which
are meant to compute the same integers faster: it stands in for those kernel sets (``stands_in_for``) for
parity and memory, and is never timed (capabilities: run, memory). Before training, its arena is predicted
(``arena``, ``ram_figure``): the RAM figure of every device it stands in for.

The arena is measured, not estimated: the smallest size (to ``ARENA_STEP`` bytes) at which the interpreter
allocates and invokes the file. Its recording allocator reports what a generous arena held, but preparing the
model needs temporary memory beyond that (a dense int8 layer: 1,184 B recorded, 1,568 B needed), so the size is
found by bisection between the two, in a process of its own (``worker``): TFLite Micro's Python build crashes
the process at some sizes just too small, and the search then goes on from the size that crashed.

A file whose constants are stored after the flatbuffer (``latency_models.tflite_buffers``; the project's exports
never are) is refused in one line: TFLite Micro does not read them, so it would plan them as arena tensors and
compute with whatever those hold, and neither its arena nor its predictions would be the model's.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from latency_models.cost import Figure, Provenance
from latency_models.errors import ModelLoadError
from latency_models.runtimes.base import Capability, Runtime
from latency_models.runtimes.litert.memory_plan import TensorMemory
from latency_models.runtimes.tflite_micro.arena import arena_bytes as predicted_arena
from latency_models.runtimes.tflite_micro.worker import ARENA_STEP
from latency_models.tflite_buffers import outside_buffers
from search_spaces.graph import ModelGraph
from search_spaces.runtime_support import SUPPORT, Support
from search_spaces.space import Candidate

GENEROUS = 1 << 16
MAX_ARENA = 64 << 20  # larger than any microcontroller's RAM: a file that needs more is refused
WORKER = Path(__file__).with_name("worker.py")
PROVENANCE = "measured: the smallest TFLite Micro arena that allocates and invokes the file (reference kernels here)"
UNLISTED = Support(runs=False, form="none", note="not in the support table")
# Measured on one-layer models of every conv, depthwise conv and dense precision the exporter writes
# (``benchmarks/tflm_memory.py``, ``support``): TFLite Micro has no kernel for these, whatever the device.
LACKS = {
    16: "TFLite Micro's DEQUANTIZE takes no float16 weights",
    4: "TFLite Micro runs int4 weights only in int8 convolutions",
}
WORKER_TIMEOUT_S = 600


class TFLiteMicro(Runtime):
    """The TFLite Micro interpreter: prepares and runs ``.tflite`` files with its reference kernels here."""

    name: ClassVar[str] = "tflite_micro"
    kernel_sets: ClassVar[tuple[str, ...]] = ("reference",)
    stands_in_for: ClassVar[tuple[str, ...]] = ("cmsis_nn", "esp_nn")
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"run", "memory"})

    def version(self) -> str:
        """``tflite-micro <version>``."""
        from tflite_micro import __version__

        return f"tflite-micro {__version__}"

    def support(self, op: str, weight_bits: int, activation_bits: int) -> Support:
        """The exporter's support table, less what TFLite Micro has no kernel for (``LACKS``)."""
        if weight_bits in LACKS and not (weight_bits == 4 and op in ("conv", "dwconv") and activation_bits == 8):
            return Support(runs=False, form="none", note=LACKS[weight_bits])
        return SUPPORT.get((op, weight_bits, activation_bits), UNLISTED)

    def predict(self, content: bytes, x: np.ndarray, *, kernel_set: str = "reference", threads: int = 1) -> np.ndarray:
        """Top-1 predictions, one example per invoke, in the smallest arena that runs the file."""
        arena = arena_bytes(content)
        with tempfile.TemporaryDirectory() as tmp:
            inputs, outputs = Path(tmp) / "x.npy", Path(tmp) / "y.npy"
            np.save(inputs, np.asarray(x, np.float32))
            _checked(_run_worker(content, "predict", str(arena), str(inputs), str(outputs)))
            return np.load(outputs)

    def ram_figure(self, graph: ModelGraph, candidate: Candidate) -> Figure:
        """The arena the candidate's export needs, predicted the way TFLite Micro allocates (``arena``): fitted
        (its per-op constants are), analytic with a float region (whose inner ops are not known)."""
        from latency_models.runtimes.tflite_micro.arena_graph import candidate_arena_graph  # imports memory

        provenance: Provenance = "analytic" if graph.float_regions else "fitted"
        return Figure(value=float(predicted_arena(candidate_arena_graph(graph, candidate))), provenance=provenance)

    def memory_plan(self, content: bytes) -> TensorMemory:
        """The tensor arena the file needs (TFLite Micro exposes no per-tensor figures)."""
        return TensorMemory(
            runtime_bytes=arena_bytes(content), largest_tensor_bytes=None, tensors=None, provenance=PROVENANCE
        )


def arena_bytes(content: bytes) -> int:
    """The smallest arena that allocates and invokes ``content``; a model TFLite Micro cannot prepare at any
    size raises ``ModelLoadError`` naming what it lacks. Found once per file content (an export's parity run
    and its memory figure share it)."""
    key = hashlib.sha256(bytes(content)).hexdigest()
    if key not in _ARENAS:
        _require_constants_inside(content)
        _ARENAS[key] = _searched_arena(content)
    return _ARENAS[key]


_ARENAS: dict[str, int] = {}


def recorded_arena(content: bytes) -> dict[str, int]:
    """What TFLite Micro's recording allocator says a generous arena held for ``content``: ``recorded_bytes``,
    ``head_bytes`` (planned tensors and scratch buffers) and ``tail_bytes`` (persistent structs); one probe,
    no search. What the arena predictor's constants are fitted to."""
    _require_constants_inside(content)
    size = max(GENEROUS, 4 * len(content))
    probe = _run_worker(content, "probe", str(size))
    while "recorded_bytes" not in probe and size < MAX_ARENA:
        size *= 2
        probe = _run_worker(content, "probe", str(size))
    return {key: int(value) for key, value in _checked(probe).items()}


def _require_constants_inside(content: bytes) -> None:
    try:
        outside = outside_buffers(content)
    except Exception:  # the flatbuffer library raises bare struct/index errors on garbage: TFLite Micro says why
        return
    if outside:
        stored = sum(size for _, size in outside.values())
        raise ModelLoadError(
            f"TFLite Micro cannot run the model: {len(outside)} of its constants ({stored:,} bytes) are stored after "
            "the flatbuffer, which TFLite Micro does not read; write them inside it (as the project's exports do)"
        )


def _searched_arena(content: bytes) -> int:
    high = max(GENEROUS, 4 * len(content))
    probe = _run_worker(content, "probe", str(high))
    while "recorded_bytes" not in probe:
        if high >= MAX_ARENA:
            _checked(probe)
        high *= 2  # a large model may need more than the first guess; a missing kernel fails at every size
        probe = _run_worker(content, "probe", str(high))
    low = -(-int(probe["recorded_bytes"]) // ARENA_STEP) * ARENA_STEP - ARENA_STEP  # below what it held: too small
    while True:
        lines = _worker_lines(content, "search", str(low), str(high))
        probing = None
        for line in lines:
            if "arena_bytes" in line:
                return int(line["arena_bytes"])
            if "probing" in line:
                probing = int(line["probing"])
            elif "arena" in line:
                high, low = (int(line["arena"]), low) if line["ok"] else (high, int(line["arena"]))
                probing = None
        if probing is None:
            raise ModelLoadError("TFLite Micro stopped while searching the arena, between probes")
        low = probing  # the size it crashed at is too small: go on from there


def _run_worker(content: bytes, command: str, *arguments: str) -> dict[str, Any]:
    """Runs ``worker`` once on ``content``: its last JSON line, or ``{"error": ...}`` when the process crashed."""
    lines = _worker_lines(content, command, *arguments)
    if not lines or "exit" in lines[-1]:
        return {"error": f"TFLite Micro stopped (exit {lines[-1]['exit'] if lines else '?'})"}
    return lines[-1]


def _worker_lines(content: bytes, command: str, *arguments: str) -> list[dict[str, Any]]:
    """Every JSON line ``worker`` printed, then ``{"exit": code}`` if it did not end normally."""
    with tempfile.NamedTemporaryFile(suffix=".tflite") as model:
        model.write(bytes(content))
        model.flush()
        argv = [sys.executable, str(WORKER), command, model.name, *arguments]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    lines: list[dict[str, Any]] = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return lines if done.returncode == 0 else [*lines, {"exit": done.returncode}]


def _checked(result: dict[str, Any]) -> dict[str, Any]:
    if "error" in result:
        raise ModelLoadError(f"TFLite Micro cannot run the model: {result['error']}")
    return result
