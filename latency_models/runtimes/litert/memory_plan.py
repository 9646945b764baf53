"""Runtime tensor memory of an exported model, read from the LiteRT interpreter's own memory plan.

The Python interpreter exposes no arena size, but after ``allocate_tensors`` every tensor it allocated has a
buffer, and ``Interpreter.tensor`` gives a view of it. The memory planner reuses arena space between tensors
that are never alive together, so the union of the non-constant tensors' address ranges is the RAM the plan
reserves for the whole invoke: activations, kernel temporaries (im2col) and runtime weight copies (a weight-only
quantized op DEQUANTIZEs its weights into float tensors at load). Constants are told apart by living inside the
model bytes the interpreter was built from (it reads them in place).

Measured with builtin kernels only: the XNNPACK delegate packs weights and plans its own workspace privately,
and the tensors it owns have no readable buffer. Allocator alignment padding is not counted, so the figure is a
lower bound of the arena by at most 64 bytes per tensor.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from latency_models.errors import ModelLoadError
from latency_models.runtimes.litert.interpreter import load_interpreter

PROVENANCE = (
    "measured: union of the buffers the LiteRT interpreter (builtin kernels) allocated for non-constant tensors "
    "after allocate_tensors; excludes alignment padding and XNNPACK's private workspace"
)


@dataclass(frozen=True, kw_only=True)
class TensorMemory:
    """RAM the interpreter reserves for tensors, in bytes."""

    runtime_bytes: int
    largest_tensor_bytes: int | None  # None where the runtime exposes no tensor (TFLite Micro's arena)
    tensors: int | None
    provenance: str = PROVENANCE


def tensor_memory(content: bytes) -> TensorMemory:
    """The runtime tensor memory of a ``.tflite`` (raises ``ModelLoadError`` when it does not load)."""
    content = bytes(content)  # the interpreter reads constants in place from exactly this object
    interpreter = load_interpreter(content, delegate="builtin")
    model_start = ctypes.cast(ctypes.c_char_p(content), ctypes.c_void_p).value
    if model_start is None:  # only an empty buffer has no address, and an empty model never loads
        raise ModelLoadError("an empty .tflite has no tensors; re-export it")
    model_end = model_start + len(content)
    spans = []
    for detail in interpreter.get_tensor_details():  # only tensors with a shape; others have no buffer
        try:
            view = interpreter.tensor(detail["index"])()
        except ValueError:  # a tensor without data (never allocated)
            continue
        address = view.__array_interface__["data"][0]
        if view.nbytes and not model_start <= address < model_end:
            spans.append((address, address + view.nbytes))
    return TensorMemory(
        runtime_bytes=union_length(spans),
        largest_tensor_bytes=max((end - start for start, end in spans), default=0),
        tensors=len(spans),
    )


def union_length(spans: list[tuple[int, int]]) -> int:
    """Total length covered by half-open ``(start, end)`` intervals, overlaps counted once."""
    total, covered_to = 0, None
    for start, end in sorted(spans):
        if covered_to is None or start >= covered_to:
            total += end - start
            covered_to = end
        elif end > covered_to:
            total += end - covered_to
            covered_to = end
    return total
