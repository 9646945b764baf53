"""The LiteRT interpreter, the one runtime both the cost models and the pipeline talk to.

Loading a ``.tflite`` with a chosen kernel set (the XNNPACK delegate by default, or the builtin kernels only),
feeding it float examples (quantized on the way in when the input is integer), reading its outputs back as
float (``timing`` times invokes). Errors are ``latency_models`` errors, so the cost package can use this
module without importing the pipeline.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from latency_models.console import third_party_output_silenced
from latency_models.errors import CostModelError, ModelLoadError

DELEGATES = {
    "xnnpack": OpResolverType.AUTO,
    "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
}


def load_interpreter(content: bytes, *, delegate: str = "xnnpack", threads: int = 1) -> Interpreter:
    """An allocated interpreter for ``content``; raises ``ModelLoadError`` with the reason when it cannot load."""
    if delegate not in DELEGATES:
        raise CostModelError(f"unknown delegate {delegate!r}; use {', '.join(DELEGATES)}")
    try:
        with third_party_output_silenced():  # the delegate's creation notice
            interpreter = Interpreter(
                model_content=content, num_threads=threads, experimental_op_resolver_type=DELEGATES[delegate]
            )
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"not a loadable LiteRT model ({first_line}); re-export it") from None
    return interpreter


def delegate_partitions(content: bytes, threads: int = 1) -> int:
    """How many partitions the XNNPACK delegate splits a model into (ops it does not take run between them)."""
    interpreter = load_interpreter(content, delegate="xnnpack", threads=threads)
    return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())  # the only op listing


def predict_tflite(interpreter: Interpreter, x: np.ndarray) -> np.ndarray:
    """Top-1 predictions for ``x``, one example per invoke (quantized inputs and outputs handled)."""
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    predictions = np.empty(len(x), np.int64)
    for i, example in enumerate(x):
        interpreter.set_tensor(inp["index"], quantize_input(example[None], inp))
        interpreter.invoke()
        predictions[i] = int(np.argmax(dequantize_output(interpreter.get_tensor(out["index"]), out)))
    return predictions


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """``x`` in the interpreter's input type (quantized with the tensor's scale and zero point when integer)."""
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
    """A tensor read from the interpreter, as float32 values."""
    if np.issubdtype(detail["dtype"], np.floating):
        return y.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return (y.astype(np.float32) - zero_point) * scale
