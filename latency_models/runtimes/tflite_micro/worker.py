"""The TFLite Micro interpreter at work, in a process of its own (run as a script: it imports nothing of the
project, so a probe costs a Python start and one import).

TFLite Micro's Python build crashes the process at some arena sizes a little too small for the model (a
segmentation fault where it computed 4294967288 bytes available), and says why a model fails only on the native
stderr; so the runtime (``latency_models.runtimes.tflite_micro``) runs each step here and reads one JSON line.

Commands:
- ``probe MODEL ARENA``: whether the model allocates and invokes in ``ARENA`` bytes:
  ``{"recorded_bytes": N, "head_bytes": H, "tail_bytes": T}`` (what its recording allocator says the arena
  held, in all and in its head and tail), or ``{"error": "..."}`` with the
  line of TFLite Micro's output that names the op or type it lacks;
- ``search MODEL LOW HIGH``: bisects between an arena too small (``LOW``) and one that allocates (``HIGH``), to
  ``ARENA_STEP`` bytes, printing ``{"probing": N}`` before each probe and ``{"arena": N, "ok": ...}`` after it,
  then ``{"arena_bytes": N}``; if a probe crashes the process, the caller knows which size did and goes on;
- ``predict MODEL ARENA X OUT``: top-1 predictions of the examples in ``X`` (``.npy``) written to ``OUT``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ARENA_STEP = 16  # TFLite Micro aligns arena allocations to 16 bytes


class PrepareError(Exception):
    """TFLite Micro could not prepare or run the model (the message is its own reason)."""


@contextlib.contextmanager
def native_stderr() -> Iterator[Callable[[], str]]:
    """Within the block, the native library's stderr goes to a file; the block gets a reader of it."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)

        def read() -> str:
            sink.flush()
            sink.seek(0)
            return sink.read().decode(errors="replace")

        try:
            yield read
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def reason(native: str, err: Exception) -> str:
    """The line of TFLite Micro's output that names what it lacks, else its first line, else the exception."""
    patterns = (r"Didn't find op for builtin opcode[^\n]*", r"[^\n]*not supported[^\n]*", r"[^\n]*was not true[^\n]*")
    for pattern in patterns:
        found = re.search(pattern, native)
        if found:
            return found.group(0).strip()
    lines = [line.strip() for line in native.splitlines() if line.strip()]
    return lines[0] if lines else str(err)


def interpreter(content: bytes, arena: int) -> Any:
    """An interpreter of ``content`` whose tensors are allocated and which has invoked once on zeros."""
    from tflite_micro import runtime

    with native_stderr() as said:
        try:
            loaded = runtime.Interpreter.from_bytes(content, arena_size=arena)
            details = loaded.get_input_details(0)
            loaded.set_input(np.zeros(details["shape"], details["dtype"]), 0)
            loaded.invoke()
        except (RuntimeError, ValueError) as err:
            raise PrepareError(reason(said(), err)) from None
    return loaded


def recorded_use(loaded: Any) -> dict[str, int]:
    """What the recording allocator says the invoked interpreter used of its arena: in all, in its head (the
    planned tensors and scratch buffers) and in its tail (the persistent structs)."""
    with native_stderr() as said:
        loaded.print_allocations()
        text = said()
    found = {part: re.search(rf"Arena allocation {part} (\d+) bytes", text) for part in ("total", "head", "tail")}
    if any(match is None for match in found.values()):
        raise PrepareError("TFLite Micro did not report its arena use")
    total, head, tail = (int(match.group(1)) for match in found.values() if match is not None)
    return {"recorded_bytes": total, "head_bytes": head, "tail_bytes": tail}


def allocates(content: bytes, arena: int) -> bool:
    """Whether ``content`` allocates and invokes in ``arena`` bytes."""
    try:
        interpreter(content, arena)
    except PrepareError:
        return False
    return True


def search(content: bytes, low: int, high: int) -> int:
    """The smallest arena between ``low`` (too small) and ``high`` (allocates), each probe announced first."""
    while high - low > ARENA_STEP:
        middle = (low + high) // 2 // ARENA_STEP * ARENA_STEP
        print(json.dumps({"probing": middle}), flush=True)
        fits = allocates(content, middle)
        print(json.dumps({"arena": middle, "ok": fits}), flush=True)
        high, low = (middle, low) if fits else (high, middle)
    return high


def predictions(content: bytes, arena: int, x: np.ndarray) -> np.ndarray:
    """Top-1 predictions of ``x``, one example per invoke, in ``arena`` bytes."""
    loaded = interpreter(content, arena)
    inputs, outputs = loaded.get_input_details(0), loaded.get_output_details(0)
    found = []
    for example in np.asarray(x, np.float32):
        loaded.set_input(_in_type(example[None], inputs), 0)
        loaded.invoke()
        found.append(int(np.argmax(_as_float(loaded.get_output(0), outputs))))
    return np.asarray(found, np.int64)


def _in_type(x: np.ndarray, details: dict[str, Any]) -> np.ndarray:
    """``x`` in the input tensor's type (quantized when the input is integer)."""
    dtype = details["dtype"]
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    scale, zero = _qparams(details)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)


def _as_float(y: np.ndarray, details: dict[str, Any]) -> np.ndarray:
    if np.issubdtype(details["dtype"], np.floating):
        return y
    scale, zero = _qparams(details)
    return (y.astype(np.float32) - zero) * scale


def _qparams(details: dict[str, Any]) -> tuple[float, int]:
    parameters = details["quantization_parameters"]
    return float(parameters["scales"][0]), int(parameters["zero_points"][0])


def main(argv: list[str]) -> None:
    """Runs one command and prints its JSON line."""
    command, model, arena = argv[0], Path(argv[1]).read_bytes(), int(argv[2])
    try:
        if command == "probe":
            result: dict[str, Any] = recorded_use(interpreter(model, arena))
        elif command == "search":
            result = {"arena_bytes": search(model, arena, int(argv[3]))}
        else:
            np.save(argv[4], predictions(model, arena, np.load(argv[3])))
            result = {"predicted": True}
    except PrepareError as err:
        result = {"error": str(err)}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
